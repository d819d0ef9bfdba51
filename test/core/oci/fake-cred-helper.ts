/**
 * Test helper: a fake `docker-credential-test` speaking the docker-credential-helpers protocol
 * (get/store/erase with the server URL or JSON on stdin; "credentials not found in native
 * keychain" on stdout with exit 1), storing entries as files in `<dir>/store` and logging each
 * call to `<dir>/store/calls.log` (the store folder is passed as FAKE_CRED_DIR).
 */
import { chmod, mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";

const HELPER = `#!/usr/bin/env node
const fs = require("fs"), path = require("path");
const dir = process.env.FAKE_CRED_DIR, cmd = process.argv[2];
const input = fs.readFileSync(0, "utf8");
const file = (s) => path.join(dir, Buffer.from(s.trim()).toString("hex") + ".json");
const server = cmd === "store" ? JSON.parse(input).ServerURL : input.trim();
fs.appendFileSync(path.join(dir, "calls.log"), cmd + " " + server + "\\n");
const missing = () => { process.stdout.write("credentials not found in native keychain\\n"); process.exit(1); };
if (cmd === "store") fs.writeFileSync(file(server), input);
else if (cmd === "get") { if (!fs.existsSync(file(server))) missing(); process.stdout.write(fs.readFileSync(file(server))); }
else if (cmd === "erase") { if (!fs.existsSync(file(server))) missing(); fs.unlinkSync(file(server)); }
else { process.stderr.write("unknown command\\n"); process.exit(2); }
`;

/** Writes the helper into `<dir>/bin`; returns the bin folder (put it first on PATH) and the store. */
export async function installFakeCredHelper(dir: string): Promise<{ bin: string; store: string }> {
  const bin = join(dir, "bin");
  const store = join(dir, "store");
  await mkdir(store, { recursive: true });
  await mkdir(bin, { recursive: true });
  await writeFile(join(bin, "docker-credential-test"), HELPER);
  await chmod(join(bin, "docker-credential-test"), 0o755);
  return { bin, store };
}

/** Stores `secret` for `server` in the fake helper's store, as its `store` command would. */
export async function fakeStore(
  store: string,
  server: string,
  username: string,
  secret: string,
): Promise<void> {
  await writeFile(
    join(store, `${Buffer.from(server).toString("hex")}.json`),
    JSON.stringify({ ServerURL: server, Username: username, Secret: secret }),
  );
}
