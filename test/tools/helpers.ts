/** Shared paths and helpers of the tool-services tests. */
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";

/** The sample tools (upper, word-count, shout-count, sleep). */
export const EXAMPLES = fileURLToPath(new URL("../../examples/tools", import.meta.url));
/** Misbehaving tools: crash, hang, bad-output, not-json, needs-env, *-missing. */
export const FIXTURE_TOOLS = fileURLToPath(new URL("./fixtures/tools", import.meta.url));
/** Other fixtures (invalid manifests, duplicate ids). */
export const FIXTURES = fileURLToPath(new URL("./fixtures", import.meta.url));

/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/** Polls `url` until it answers 200 or `seconds` pass. */
export async function waitForHttp(url: string, seconds = 20): Promise<void> {
  const until = Date.now() + seconds * 1000;
  let last: unknown;
  while (Date.now() < until) {
    // A ref'd timer bounds each attempt: a published port with nothing listening behind it yet
    // (docker-proxy) accepts and stalls, and undici's socket alone does not keep the loop alive.
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), 2000);
    try {
      const r = await fetch(url, { signal: ac.signal });
      await r.arrayBuffer();
      if (r.ok) return;
      last = r.status;
    } catch (e) {
      last = e;
    } finally {
      clearTimeout(timer);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${url} did not answer within ${seconds} s: ${String(last)}`);
}
