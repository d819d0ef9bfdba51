/**
 * Test helper: a local model server on 127.0.0.1 speaking the wire formats the providers' SDKs
 * use — OpenAI chat completions (`POST /v1/chat/completions`, JSON or SSE chunks ending in
 * `[DONE]`), Anthropic messages (`POST /v1/messages`, JSON or the SSE event sequence
 * message_start … message_stop) and ollama chat (`POST /api/chat`, JSON or NDJSON). It answers
 * with `answer(request)` and can fail the next calls with given statuses (429 / 5xx) to exercise
 * the SDKs' retries. No model runs: the tests check the dockpack side of the wire.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/** A request the server received. */
export interface SeenRequest {
  path: string;
  headers: IncomingMessage["headers"];
  // biome-ignore lint/suspicious/noExplicitAny: request bodies are checked field by field
  body: any;
}

/** A running fake provider server. */
export interface FakeProvider {
  /** e.g. `http://127.0.0.1:41234` (OpenAI/Anthropic SDKs: add `/v1`; ollama: as is). */
  url: string;
  requests: SeenRequest[];
  /** Builds the model's answer text from the request (default: a JSON summary of the user text). */
  answer: (r: SeenRequest) => string;
  /** Statuses to answer the next calls with (then normal answers resume). */
  failNext: number[];
  close(): Promise<void>;
}

function userText(r: SeenRequest): string {
  const msgs = (r.body.messages ?? []) as { role: string; content: unknown }[];
  const last = [...msgs].reverse().find((m) => m.role === "user");
  return typeof last?.content === "string" ? last.content : JSON.stringify(last?.content ?? "");
}

/** The default answer: `{"summary": "<user text, upper-cased>", "words": N}`. */
export function defaultAnswer(r: SeenRequest): string {
  const text = userText(r).replace(/^.*?:\s*/s, "");
  return JSON.stringify({ summary: text.toUpperCase(), words: text.split(/\s+/).filter(Boolean).length });
}

const pieces = (s: string) => s.match(/.{1,7}/gs) ?? [""];

function sse(res: ServerResponse, events: { event?: string; data: unknown }[]): void {
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
  for (const e of events)
    res.write(
      `${e.event ? `event: ${e.event}\n` : ""}data: ${typeof e.data === "string" ? e.data : JSON.stringify(e.data)}\n\n`,
    );
  res.end();
}

function openai(res: ServerResponse, r: SeenRequest, text: string): void {
  const base = { id: "chatcmpl-test", created: 1_700_000_000, model: r.body.model };
  if (!r.body.stream) {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(
      JSON.stringify({
        ...base,
        object: "chat.completion",
        choices: [
          { index: 0, message: { role: "assistant", content: text }, finish_reason: "stop", logprobs: null },
        ],
        usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 },
      }),
    );
    return;
  }
  const chunk = (delta: object, finish: string | null) => ({
    data: { ...base, object: "chat.completion.chunk", choices: [{ index: 0, delta, finish_reason: finish }] },
  });
  sse(res, [
    chunk({ role: "assistant", content: "" }, null),
    ...pieces(text).map((p) => chunk({ content: p }, null)),
    chunk({}, "stop"),
    { data: "[DONE]" },
  ]);
}

function anthropic(res: ServerResponse, r: SeenRequest, text: string): void {
  const message = {
    id: "msg_test",
    type: "message",
    role: "assistant",
    model: r.body.model,
    stop_sequence: null,
  };
  if (!r.body.stream) {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(
      JSON.stringify({
        ...message,
        content: [{ type: "text", text }],
        stop_reason: "end_turn",
        usage: { input_tokens: 10, output_tokens: 5 },
      }),
    );
    return;
  }
  const ev = (type: string, data: object) => ({ event: type, data: { type, ...data } });
  sse(res, [
    ev("message_start", {
      message: { ...message, content: [], stop_reason: null, usage: { input_tokens: 10, output_tokens: 1 } },
    }),
    ev("content_block_start", { index: 0, content_block: { type: "text", text: "" } }),
    ev("ping", {}),
    ...pieces(text).map((p) =>
      ev("content_block_delta", { index: 0, delta: { type: "text_delta", text: p } }),
    ),
    ev("content_block_stop", { index: 0 }),
    ev("message_delta", {
      delta: { stop_reason: "end_turn", stop_sequence: null },
      usage: { output_tokens: 5 },
    }),
    ev("message_stop", {}),
  ]);
}

function ollama(res: ServerResponse, r: SeenRequest, text: string): void {
  const base = { model: r.body.model, created_at: "2026-01-01T00:00:00Z" };
  const done = { done: true, done_reason: "stop", total_duration: 1, eval_count: 5, prompt_eval_count: 10 };
  if (r.body.stream === false) {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ ...base, message: { role: "assistant", content: text }, ...done }));
    return;
  }
  res.writeHead(200, { "content-type": "application/x-ndjson" });
  for (const p of pieces(text))
    res.write(`${JSON.stringify({ ...base, message: { role: "assistant", content: p }, done: false })}\n`);
  res.end(`${JSON.stringify({ ...base, message: { role: "assistant", content: "" }, ...done })}\n`);
}

/** Starts a fake provider server on 127.0.0.1 (a free port). */
export async function startFakeProvider(): Promise<FakeProvider> {
  const fake: FakeProvider = {
    url: "",
    requests: [],
    answer: defaultAnswer,
    failNext: [],
    close: async () => {},
  };
  const server: Server = createServer((req, res) => {
    let raw = "";
    req.on("data", (d) => {
      raw += d;
    });
    req.on("end", () => {
      const path = (req.url ?? "").split("?")[0];
      let body: unknown = {};
      try {
        body = raw ? JSON.parse(raw) : {};
      } catch {
        res.writeHead(400).end();
        return;
      }
      const seen: SeenRequest = { path, headers: req.headers, body };
      fake.requests.push(seen);
      const fail = fake.failNext.shift();
      if (fail) {
        res.writeHead(fail, {
          "content-type": "application/json",
          "retry-after-ms": "10",
          "retry-after": "0",
        });
        res.end(JSON.stringify({ error: { type: "test_error", message: `injected ${fail}` } }));
        return;
      }
      const text = fake.answer(seen);
      if (path === "/v1/chat/completions") openai(res, seen, text);
      else if (path === "/v1/messages") anthropic(res, seen, text);
      else if (path === "/api/chat") ollama(res, seen, text);
      else res.writeHead(404, { "content-type": "application/json" }).end('{"error":"not found"}');
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  fake.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  fake.close = () =>
    new Promise((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
  return fake;
}
