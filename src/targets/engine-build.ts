/**
 * One image build through the Docker Engine API (POST /build, classic builder): sends a context
 * tar, streams the build log line by line, and reports the image ID (from `aux.ID` or
 * "Successfully built"), the last `Step n/m` seen and the tail of the log. Shared by
 * `targets build` and `tool compile --push`.
 */
import type Docker from "dockerode";
import { engineMessage } from "../core/docker/client.js";
import { readJsonLines } from "./engine-stream.js";

/** What {@link engineBuild} saw. */
export interface EngineBuildOutcome {
  /** `sha256:…` image ID when the build succeeded. */
  imageId?: string;
  /** The engine's error message when it failed. */
  failure?: string;
  /** The last `Step n/m : …` line (empty before the first step). */
  step: string;
  /** The last 20 log lines (build output and the error). */
  tail: string[];
}

/**
 * Runs POST /build with `context` (a tar stream) and `params` (dockerode buildImage options:
 * `dockerfile`, `t`, `buildargs`, `labels`, `platform`, …; `rm`/`forcerm` are set). Log lines go
 * to `log`, progress status lines to `debug`. Never throws for a failed build: the outcome
 * carries `failure` instead (the caller names what failed).
 */
export async function engineBuild(
  docker: Docker,
  context: NodeJS.ReadableStream,
  params: Record<string, unknown>,
  log: (line: string) => void,
  debug: (line: string) => void = () => undefined,
): Promise<EngineBuildOutcome> {
  const tail: string[] = [];
  const remember = (line: string) => {
    tail.push(line);
    if (tail.length > 20) tail.shift();
  };
  let step = "";
  let imageId: string | undefined;
  let failure: string | undefined;
  try {
    const stream = (await docker.buildImage(context, {
      ...params,
      rm: true,
      forcerm: true,
    } as never)) as unknown as NodeJS.ReadableStream;
    await readJsonLines(stream, (msg) => {
      if (typeof msg.stream === "string") {
        for (const line of msg.stream.split("\n")) {
          if (!line.trim()) continue;
          if (/^Step \d+\/\d+ :/.test(line)) step = line.trim();
          const id = /^Successfully built ([0-9a-f]{12,64})/.exec(line);
          if (id && !imageId) imageId = id[1];
          remember(line);
          log(line);
        }
      }
      if (typeof msg.status === "string")
        debug(`${msg.status}${typeof msg.progress === "string" ? ` ${msg.progress}` : ""}`);
      const aux = msg.aux as { ID?: string } | undefined;
      if (aux?.ID) imageId = aux.ID;
      if (msg.error || msg.errorDetail) {
        const detail = msg.errorDetail as { message?: string } | undefined;
        failure = String(detail?.message ?? msg.error);
        remember(failure);
      }
    });
  } catch (err) {
    failure = engineMessage(err);
  }
  if (!failure && imageId && !imageId.startsWith("sha256:"))
    imageId = ((await docker.getImage(imageId).inspect()) as { Id: string }).Id;
  return { ...(imageId && !failure ? { imageId } : {}), ...(failure ? { failure } : {}), step, tail };
}
