/**
 * Test helper: a tiny sample project with one Node service, one Python service, one Python job
 * and one Go app, in a fresh temp folder (not a git repo unless asked).
 */
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

const NODE_SERVER = `const http = require("node:http");
const port = Number(process.env.PORT || 8080);
http
  .createServer((req, res) => {
    res.end(req.url === "/healthz" ? "ok" : "hello from web");
  })
  .listen(port, "0.0.0.0");
`;

// Only modules of python3-minimal (the fixture has no http.server or urllib).
const PY_SERVER = `import os
import socket
import threading


def handle(conn):
    with conn:
        words = conn.recv(1024).split(b" ")
        body = b"ok" if len(words) > 1 and words[1] == b"/healthz" else b"hello from pyapi"
        conn.sendall(b"HTTP/1.0 200 OK\\r\\nContent-Length: %d\\r\\n\\r\\n" % len(body) + body)


server = socket.create_server(("0.0.0.0", int(os.environ.get("PORT", "8080"))))
while True:
    conn, _ = server.accept()
    threading.Thread(target=handle, args=(conn,), daemon=True).start()
`;

/** Files of the sample project, relative path → content. */
export const SAMPLE_FILES: Record<string, string> = {
  ".dockerignore": "**/*.log\n**/node_modules\n.git\n",
  "services/web/package.json": '{ "name": "web", "version": "1.0.0", "main": "server.js" }\n',
  "services/web/server.js": NODE_SERVER,
  "services/web/debug.log": "must not reach the image\n",
  "services/pyapi/app.py": PY_SERVER,
  "services/pyapi/requirements.txt": "",
  "jobs/report/main.py": 'print("report done")\n',
  "apps/cli/go.mod": "module example.com/cli\n\ngo 1.22\n",
  "apps/cli/main.go": 'package main\n\nimport "fmt"\n\nfunc main() { fmt.Println("cli") }\n',
};

/** Creates the sample project in a new temp folder and returns its path. */
export function makeSampleProject(prefix = "dockpack-targets-"): string {
  const root = mkdtempSync(join(tmpdir(), prefix));
  for (const [rel, text] of Object.entries(SAMPLE_FILES)) {
    mkdirSync(dirname(join(root, rel)), { recursive: true });
    writeFileSync(join(root, rel), text);
  }
  return root;
}
