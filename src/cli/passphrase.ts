/**
 * Passphrases for encrypted packages (`packages export --encrypt-passphrase`, `packages import`
 * of a package encrypted to a passphrase): read from `$DOCKPACK_PASSPHRASE` when set (scripts),
 * else asked on the terminal without echo. Never asked when stdin or stderr is not a TTY.
 */
import { DockpackError } from "../core/errors.js";

/** True when a passphrase can be asked for on the terminal. */
export function canAskPassphrase(): boolean {
  return Boolean(process.stdin.isTTY && process.stderr.isTTY);
}

/**
 * Reads a passphrase typed on the terminal (no echo), or `$DOCKPACK_PASSPHRASE`.
 * @param confirm ask twice and require both to match (when choosing one)
 * @throws DockpackError `PASSPHRASE_UNAVAILABLE` (usage) without a TTY and without the variable,
 *   `PASSPHRASE_MISMATCH` when the two differ, `PASSPHRASE_EMPTY`
 */
export async function askPassphrase(prompt: string, confirm = false): Promise<string> {
  const fromEnv = process.env.DOCKPACK_PASSPHRASE;
  if (fromEnv) return fromEnv;
  if (!canAskPassphrase())
    throw new DockpackError(
      "PASSPHRASE_UNAVAILABLE",
      "A passphrase is needed and there is no terminal to ask it on.",
      {
        hint: "Set DOCKPACK_PASSPHRASE, or use age recipients/identities (--encrypt-to / --identity).",
        usage: true,
      },
    );
  const first = await readHidden(prompt);
  if (!first) throw new DockpackError("PASSPHRASE_EMPTY", "The passphrase is empty.", { usage: true });
  if (confirm && (await readHidden("Again: ")) !== first)
    throw new DockpackError("PASSPHRASE_MISMATCH", "The two passphrases differ.", { usage: true });
  return first;
}

function readHidden(prompt: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const stdin = process.stdin;
    process.stderr.write(prompt);
    let value = "";
    const wasRaw = stdin.isRaw;
    stdin.setRawMode(true);
    stdin.resume();
    const done = (err?: Error) => {
      stdin.setRawMode(wasRaw);
      stdin.pause();
      stdin.off("data", onData);
      process.stderr.write("\n");
      if (err) reject(err);
      else resolve(value);
    };
    const onData = (chunk: Buffer) => {
      for (const ch of chunk.toString("utf8")) {
        if (ch === "\r" || ch === "\n") return done();
        if (ch === "\u0003") return done(new DockpackError("INTERRUPTED", "Interrupted."));
        if (ch === "\u007f" || ch === "\b") value = value.slice(0, -1);
        else value += ch;
      }
    };
    stdin.on("data", onData);
  });
}
