/**
 * The OpenAPI 3.1 document of a tool service, generated from the tool's input and output
 * schemas (OpenAPI 3.1 uses JSON Schema 2020-12 for its schemas).
 */
import type { Tool } from "./manifest.js";

/** Builds the OpenAPI 3.1 document served at `GET /openapi.json`. */
export function openApiDocument(tool: Tool, options: { auth: boolean }): Record<string, unknown> {
  const m = tool.manifest;
  const error = {
    type: "object",
    properties: { success: { const: false }, error: { type: "string" }, code: { type: "string" } },
    required: ["success", "error"],
  };
  const json = (schema: unknown, description: string) => ({
    description,
    content: { "application/json": { schema } },
  });
  return {
    openapi: "3.1.0",
    info: { title: m.name, version: m.version, description: m.description },
    paths: {
      "/api/invoke": {
        post: {
          operationId: "invoke",
          summary: `Run ${m.name}`,
          ...(options.auth ? { security: [{ bearer: [] }] } : {}),
          requestBody: { required: true, content: { "application/json": { schema: m.input_schema } } },
          responses: {
            "200": json(
              {
                type: "object",
                properties: {
                  success: { const: true },
                  tool_id: { type: "string" },
                  result: m.output_schema,
                },
                required: ["success", "tool_id", "result"],
              },
              "The tool's result",
            ),
            "400": json(error, "The body is not JSON"),
            "401": json(error, "Missing or wrong bearer token"),
            "413": json(error, "The body is too large"),
            "422": json(
              {
                ...error,
                properties: { ...error.properties, errors: { type: "array", items: { type: "string" } } },
              },
              "The input does not match the input schema",
            ),
            "429": json(error, "Rate limit exceeded"),
            "500": json(error, "The tool failed or timed out"),
          },
        },
      },
      "/api/health": { get: { operationId: "health", responses: { "200": { description: "Healthy" } } } },
      "/api/info": {
        get: { operationId: "info", responses: { "200": { description: "Tool description and schemas" } } },
      },
      "/metrics": {
        get: { operationId: "metrics", responses: { "200": { description: "Prometheus text format" } } },
      },
    },
    components: options.auth ? { securitySchemes: { bearer: { type: "http", scheme: "bearer" } } } : {},
  };
}
