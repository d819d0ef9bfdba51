/**
 * LLM tools (`type: llm`): a prompt template with input and output schemas, answered by a model
 * through the provider's official SDK — `openai` (any OpenAI-compatible endpoint: OpenAI,
 * ollama's /v1, vLLM, llama.cpp server), `@anthropic-ai/sdk`, `ollama`.
 *
 * Settings (environment, e.g. `.env` of a compiled service): `LLM_PROVIDER` (openai, anthropic,
 * ollama; default openai, or the tool's `llm.provider`), `LLM_MODEL` (or `llm.model`),
 * `LLM_BASE_URL` (another endpoint), `OPENAI_API_KEY`, `ANTHROPIC_API_KEY`, `LLM_MAX_RETRIES`
 * (default 2: 408/409/429/5xx and connection errors are retried with backoff). The model is asked
 * for one JSON object matching `output_schema`; the invoke checks it. Keys never reach messages or
 * logs: any occurrence is replaced by `***`.
 */
import { DockpackError } from "../core/errors.js";
import type { Tool, ToolManifest } from "./manifest.js";
import { parseToolStdout } from "./runner.js";

type LlmSection = Partial<NonNullable<ToolManifest["llm"]>>;
const section = (tool: Tool): LlmSection => tool.manifest.llm ?? {};

/** The providers an LLM tool can use. */
export const LLM_PROVIDERS = ["openai", "anthropic", "ollama"] as const;
/** One of {@link LLM_PROVIDERS}. */
export type LlmProvider = (typeof LLM_PROVIDERS)[number];

/** Options of {@link runLlm}. */
export interface LlmRunOptions {
  /** Seconds for the whole call, retries included (default: the tool's timeout_seconds). */
  timeoutSeconds?: number;
  signal?: AbortSignal;
  /** Settings (default process.env). */
  env?: NodeJS.ProcessEnv;
}

/** The resolved settings of one call. */
export interface LlmSettings {
  provider: LlmProvider;
  model: string;
  baseUrl?: string;
  apiKey?: string;
  maxRetries: number;
}

/**
 * Reads the LLM settings for `tool` from `env` (tool values as defaults).
 * @throws DockpackError `LLM_CONFIG_INVALID` (unknown provider, no model, bad retries),
 *   `TOOL_ENV_MISSING` (no API key for the hosted OpenAI/Anthropic endpoints)
 */
export function llmSettings(tool: Tool, env: NodeJS.ProcessEnv = process.env): LlmSettings {
  const l = section(tool);
  const provider = (env.LLM_PROVIDER?.trim() || l.provider || "openai") as LlmProvider;
  if (!LLM_PROVIDERS.includes(provider))
    throw new DockpackError(
      "LLM_CONFIG_INVALID",
      `LLM_PROVIDER=${provider} is not one of ${LLM_PROVIDERS.join(", ")}.`,
      {
        hint: "Set LLM_PROVIDER in the environment or .env (openai also covers ollama's /v1, vLLM and llama.cpp server).",
        usage: true,
      },
    );
  const model = env.LLM_MODEL?.trim() || l.model;
  if (!model)
    throw new DockpackError("LLM_CONFIG_INVALID", `Tool '${tool.manifest.id}' has no model: set LLM_MODEL.`, {
      hint: "Set LLM_MODEL in the environment or .env (or llm.model in tool.yaml).",
    });
  const retriesRaw = env.LLM_MAX_RETRIES?.trim();
  const maxRetries = retriesRaw ? Number(retriesRaw) : 2;
  if (!Number.isInteger(maxRetries) || maxRetries < 0 || maxRetries > 10)
    throw new DockpackError(
      "LLM_CONFIG_INVALID",
      `LLM_MAX_RETRIES=${retriesRaw} is not an integer from 0 to 10.`,
      {
        usage: true,
      },
    );
  const baseUrl = env.LLM_BASE_URL?.trim() || l.base_url || undefined;
  const keyName =
    provider === "openai" ? "OPENAI_API_KEY" : provider === "anthropic" ? "ANTHROPIC_API_KEY" : "";
  const apiKey = keyName ? env[keyName]?.trim() || undefined : undefined;
  // The hosted APIs need a key; a self-hosted OpenAI-compatible endpoint usually does not.
  if (keyName && !apiKey && !baseUrl)
    throw new DockpackError(
      "TOOL_ENV_MISSING",
      `Tool '${tool.manifest.id}' needs ${keyName} for ${provider}.`,
      {
        hint: `Set ${keyName} in the environment or .env, or LLM_BASE_URL for a self-hosted endpoint.`,
      },
    );
  return { provider, model, baseUrl, apiKey, maxRetries };
}

function lookup(input: Record<string, unknown>, path: string): unknown {
  let cur: unknown = input;
  for (const k of path.split("."))
    cur = cur && typeof cur === "object" ? (cur as Record<string, unknown>)[k] : undefined;
  return cur;
}

/**
 * Renders the tool's prompt: `{{field}}` / `{{a.b}}` become input values (objects as JSON),
 * `{{input_json}}` the whole input. A prompt without placeholders gets the input JSON appended.
 */
export function renderPrompt(template: string, input: Record<string, unknown>): string {
  let used = false;
  const text = template.replace(/\{\{\s*([A-Za-z_][\w.]*)\s*\}\}/g, (_, key: string) => {
    used = true;
    if (key === "input_json") return JSON.stringify(input);
    const v = lookup(input, key);
    return v === undefined ? "" : typeof v === "string" ? v : JSON.stringify(v);
  });
  return used ? text : `${text}\n\nInput:\n${JSON.stringify(input)}`;
}

/** The single string property of a schema like `{properties: {answer: {type: string}}}`, if that is all it has. */
function singleStringField(schema: Record<string, unknown>): string | undefined {
  const props = Object.entries((schema.properties as Record<string, { type?: unknown }>) ?? {});
  return props.length === 1 && props[0][1]?.type === "string" ? props[0][0] : undefined;
}

function instructions(tool: Tool): string {
  const m = tool.manifest;
  const base = m.llm?.system ?? "";
  const field = singleStringField(m.output_schema);
  const json = `Answer with exactly one JSON object, no other text, matching this JSON Schema:\n${JSON.stringify(m.output_schema)}`;
  return [base, field ? `${json}\n(A plain text answer is taken as "${field}".)` : json]
    .filter(Boolean)
    .join("\n\n");
}

/** Parses the model's answer: a JSON object (fences allowed), or plain text for a one-string schema. */
export function parseAnswer(tool: Tool, text: string): Record<string, unknown> {
  const unfenced = text.trim().replace(/^```(?:json)?\s*\n?([\s\S]*?)\n?```$/i, "$1");
  const obj = parseToolStdout(unfenced);
  if (obj) return obj;
  const field = singleStringField(tool.manifest.output_schema);
  if (field) return { [field]: text.trim() };
  throw new DockpackError(
    "TOOL_OUTPUT_NOT_JSON",
    `The model's answer for tool '${tool.manifest.id}' is not a JSON object.`,
    {
      hint: "Make the prompt ask for JSON, or give output_schema a single string property.",
      details: { stdout: text.slice(0, 2000) },
    },
  );
}

type Chat = (
  s: LlmSettings,
  system: string,
  user: string,
  o: { signal: AbortSignal; timeoutMs: number },
) => Promise<string>;

const openaiChat =
  (tool: Tool): Chat =>
  async (s, system, user, o) => {
    const { default: OpenAI } = await import("openai");
    const client = new OpenAI({
      apiKey: s.apiKey ?? "none",
      baseURL: s.baseUrl,
      timeout: o.timeoutMs,
      maxRetries: s.maxRetries,
    });
    const l = section(tool);
    const body = {
      model: s.model,
      messages: [
        { role: "system" as const, content: system },
        { role: "user" as const, content: user },
      ],
      ...(l.temperature !== undefined ? { temperature: l.temperature } : {}),
      ...(l.max_tokens !== undefined ? { max_tokens: l.max_tokens } : {}),
      ...(singleStringField(tool.manifest.output_schema)
        ? {}
        : { response_format: { type: "json_object" as const } }),
    };
    if (!l.stream) {
      const res = await client.chat.completions.create(body, { signal: o.signal });
      return res.choices[0]?.message?.content ?? "";
    }
    let text = "";
    const stream = await client.chat.completions.create({ ...body, stream: true }, { signal: o.signal });
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? "";
    return text;
  };

const anthropicChat =
  (tool: Tool): Chat =>
  async (s, system, user, o) => {
    const { default: Anthropic } = await import("@anthropic-ai/sdk");
    const client = new Anthropic({
      apiKey: s.apiKey ?? "none",
      baseURL: s.baseUrl,
      timeout: o.timeoutMs,
      maxRetries: s.maxRetries,
    });
    const l = section(tool);
    const body = {
      model: s.model,
      max_tokens: l.max_tokens ?? 1024,
      system,
      messages: [{ role: "user" as const, content: user }],
      ...(l.temperature !== undefined ? { temperature: l.temperature } : {}),
    };
    if (!l.stream) {
      const msg = await client.messages.create(body, { signal: o.signal });
      return msg.content.map((b) => (b.type === "text" ? b.text : "")).join("");
    }
    let text = "";
    const stream = await client.messages.create({ ...body, stream: true }, { signal: o.signal });
    for await (const ev of stream)
      if (ev.type === "content_block_delta" && ev.delta.type === "text_delta") text += ev.delta.text;
    return text;
  };

const ollamaChat =
  (tool: Tool): Chat =>
  async (s, system, user, o) => {
    const { Ollama } = await import("ollama");
    const client = new Ollama({ host: s.baseUrl ?? "http://127.0.0.1:11434" });
    const onAbort = () => client.abort();
    o.signal.addEventListener("abort", onAbort, { once: true });
    const l = section(tool);
    const body = {
      model: s.model,
      messages: [
        { role: "system", content: system },
        { role: "user", content: user },
      ],
      ...(singleStringField(tool.manifest.output_schema) ? {} : { format: tool.manifest.output_schema }),
      options: {
        ...(l.temperature !== undefined ? { temperature: l.temperature } : {}),
        ...(l.max_tokens !== undefined ? { num_predict: l.max_tokens } : {}),
      },
    };
    try {
      // The ollama SDK does not retry: 429 and 5xx are retried here, with backoff.
      for (let attempt = 0; ; attempt++) {
        try {
          if (!l.stream) return (await client.chat({ ...body, stream: false })).message.content;
          let text = "";
          for await (const part of await client.chat({ ...body, stream: true })) text += part.message.content;
          return text;
        } catch (e) {
          const status = (e as { status_code?: number }).status_code ?? 0;
          if (o.signal.aborted || attempt >= s.maxRetries || !(status === 429 || status >= 500)) throw e;
          await new Promise((r) => setTimeout(r, Math.min(8000, 250 * 2 ** attempt)));
        }
      }
    } finally {
      o.signal.removeEventListener("abort", onAbort);
    }
  };

function redact(text: string, s: LlmSettings): string {
  return s.apiKey && s.apiKey.length >= 4 ? text.split(s.apiKey).join("***") : text;
}

function providerError(
  e: unknown,
  tool: Tool,
  s: LlmSettings,
  timedOut: boolean,
  timeout: number,
): DockpackError {
  const id = tool.manifest.id;
  if (timedOut)
    return new DockpackError(
      "TOOL_TIMEOUT",
      `Tool '${id}': ${s.provider} did not answer within ${timeout} s.`,
      {
        hint: "Raise timeout_seconds in tool.yaml, or use a faster model.",
      },
    );
  const err = e as {
    status?: number;
    status_code?: number;
    name?: string;
    message?: string;
    cause?: { code?: string };
  };
  const status = err.status ?? err.status_code;
  const where = s.baseUrl ?? `the ${s.provider} API`;
  const msg = redact(String(err.message ?? e), s)
    .split("\n")[0]
    .slice(0, 300);
  if (err.name === "AbortError" || err.name === "APIUserAbortError")
    return new DockpackError("TOOL_CANCELED", `Tool '${id}' was canceled.`);
  if (status === 401 || status === 403)
    return new DockpackError(
      "LLM_AUTH_FAILED",
      `Tool '${id}': ${where} refused the credentials (HTTP ${status}).`,
      {
        hint: `Check ${s.provider === "anthropic" ? "ANTHROPIC_API_KEY" : "OPENAI_API_KEY"} in the environment or .env.`,
      },
    );
  if (status === 429)
    return new DockpackError(
      "LLM_RATE_LIMITED",
      `Tool '${id}': ${where} kept answering 429 (rate limit) after ${s.maxRetries} retries.`,
      {
        hint: "Retry later, or raise LLM_MAX_RETRIES.",
      },
    );
  if (status)
    return new DockpackError("LLM_PROVIDER_ERROR", `Tool '${id}': ${where} answered HTTP ${status}: ${msg}`, {
      hint:
        status === 404
          ? "Check LLM_MODEL and LLM_BASE_URL."
          : "See the provider's status; the call was retried.",
      details: { status },
    });
  return new DockpackError("LLM_UNREACHABLE", `Tool '${id}': cannot reach ${where}: ${msg}`, {
    hint: "Check LLM_BASE_URL (and that the model server runs).",
  });
}

/**
 * Runs LLM tool `tool` with `input` (already validated): renders the prompt, calls the model
 * through the provider's SDK (with timeout and retries), parses its JSON answer.
 * @returns the answer object (the caller checks it against output_schema)
 * @throws DockpackError `LLM_CONFIG_INVALID`, `TOOL_ENV_MISSING`, `TOOL_TIMEOUT`, `TOOL_CANCELED`,
 *   `LLM_AUTH_FAILED`, `LLM_RATE_LIMITED`, `LLM_PROVIDER_ERROR`, `LLM_UNREACHABLE`, `TOOL_OUTPUT_NOT_JSON`
 */
export async function runLlm(
  tool: Tool,
  input: Record<string, unknown>,
  options: LlmRunOptions = {},
): Promise<Record<string, unknown>> {
  const s = llmSettings(tool, options.env);
  const timeout = options.timeoutSeconds ?? tool.manifest.timeout_seconds;
  const ac = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    ac.abort();
  }, timeout * 1000);
  const onAbort = () => ac.abort();
  options.signal?.addEventListener("abort", onAbort, { once: true });
  const chat = { openai: openaiChat, anthropic: anthropicChat, ollama: ollamaChat }[s.provider](tool);
  try {
    const text = await chat(s, instructions(tool), renderPrompt(tool.manifest.llm?.prompt ?? "", input), {
      signal: ac.signal,
      timeoutMs: timeout * 1000,
    });
    return parseAnswer(tool, text);
  } catch (e) {
    if (e instanceof DockpackError) throw e;
    throw providerError(e, tool, s, timedOut, timeout);
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener("abort", onAbort);
  }
}
