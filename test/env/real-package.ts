/**
 * Test helper: one small *real* environment package, exported on the engine from a copy of
 * examples/compose-app (two named volumes with a few files, owners, modes, a symlink, an .env of
 * mode 600, an uncommitted change and an untracked file). Used by the mutant and hostile-import
 * tests; everything it creates carries the returned `project` prefix.
 */
import { chmod, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createEnvironment, exportEnvironment, initEnvironments } from "../../src/env/index.js";
import { ensureFixture } from "../helpers/fixtures.js";
import { commitAll, inVolume, makeAppRepo, sh } from "./engine-helpers.js";

/** What {@link makeRealPackage} made. */
export interface RealPackage {
  work: string;
  app: string;
  project: string;
  /** Absolute path of the exported package (gzip volumes). */
  pkg: string;
  /** Docker volume name of `branch`'s volume `v`. */
  vol: (branch: string, v: string) => string;
}

/** Exports branch `src` of a fresh project as a package (see the module docs). */
export async function makeRealPackage(prefix: string): Promise<RealPackage> {
  await ensureFixture("busybox");
  const project = `${prefix}${Math.random().toString(36).slice(2, 8)}`;
  const { work, app } = makeAppRepo(`dockpack-${prefix}`);
  await initEnvironments({ cwd: app, project });
  commitAll(app, "dockpack config");
  const vol = (branch: string, v: string) => `${project}-${branch}_${v}`;
  const env = await createEnvironment({ cwd: app, branch: "src" });
  for (const v of ["db", "media"]) sh("docker", ["volume", "create", vol("src", v)]);
  inVolume(
    vol("src", "db"),
    "mkdir -p /data/demo /data/empty && printf '1\\tone\\n' > /data/demo/records.log && chown -R 999:999 /data/demo && chmod 640 /data/demo/records.log",
  );
  inVolume(
    vol("src", "media"),
    "echo pic > /data/p.jpg && ln -s p.jpg /data/latest && ln /data/p.jpg /data/hard",
  );
  await writeFile(join(env.path, "untracked.txt"), "new file\n");
  await writeFile(join(env.path, "www/index.html"), "<h1>changed</h1>\n");
  await chmod(join(env.path, ".env"), 0o600);
  const exp = await exportEnvironment({
    cwd: app,
    branch: "src",
    outputDir: join(work, "packages"),
    codec: "gzip",
  });
  return { work, app, project, pkg: exp.package, vol };
}
