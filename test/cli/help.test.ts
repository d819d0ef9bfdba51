/**
 * Issue 14 B14: every command's --help (in-process, as `dockpack … --help` prints it when stdout
 * is not a terminal): lines ≤ 80 columns, descriptions in one style (lowercase first word, as
 * commander's own "display help for command"; proper nouns and acronyms excepted), and examples
 * that run the command they document (no example copied from a sibling).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { Command } from "commander";
import { HELP_WIDTH, helpStyle } from "../../src/cli/common.js";
import { GROUPS } from "../../src/cli/groups.js";

/** First words allowed to start with a capital: proper nouns and acronyms. */
const PROPER =
  /^(Dev Container|MCP|OCI|JSON|HTTP|API|Docker|Dockerfile|Python|Node|ID|URL)\b|^[A-Z0-9_]{2,}\b/;

async function allCommands(): Promise<{ root: Command; out: { text: string } }> {
  const out = { text: "" };
  const root = helpStyle(new Command("dockpack")).configureOutput({
    writeOut: (s) => {
      out.text += s;
    },
    getOutHelpWidth: () => HELP_WIDTH,
  });
  for (const g of GROUPS) (await g.load()).register(root);
  return { root, out };
}

function walk(cmd: Command, path: string[] = []): { cmd: Command; path: string[] }[] {
  return cmd.commands.flatMap((c) => [
    { cmd: c, path: [...path, c.name()] },
    ...walk(c, [...path, c.name()]),
  ]);
}

test("every command's help: ≤ 80 columns, lowercase descriptions, examples of that command", async () => {
  const { root, out } = await allCommands();
  const problems: string[] = [];
  for (const { cmd, path } of walk(root)) {
    const where = `dockpack ${path.join(" ")}`;
    out.text = "";
    cmd.outputHelp();
    const help = out.text;
    for (const line of help.split("\n"))
      if (line.length > HELP_WIDTH) problems.push(`${where}: ${line.length} columns: ${line}`);
    const texts = [
      cmd.description(),
      ...cmd.options.map((o) => o.description),
      ...cmd.registeredArguments.map((a) => a.description),
    ];
    for (const t of texts)
      if (t && /^[A-Z]/.test(t) && !PROPER.test(t)) problems.push(`${where}: capitalised: ${t.slice(0, 50)}`);
    const examples = help.split("\nExamples:\n")[1];
    if (examples) {
      const commands = examples
        .replace(/ \\\n\s+/g, " ")
        .split("\n")
        .filter((l) => l.trim().startsWith("$ "));
      // a leaf command's examples that run dockpack run that command (options may come between)
      const runs = new RegExp(`\\bdockpack(?: \\S+)*? ${path.join("(?: \\S+)*? ")}(?:\\s|$)`);
      if (cmd.commands.length === 0)
        for (const c of commands)
          if (/\bdockpack /.test(c) && !runs.test(c))
            problems.push(`${where}: example of another command: ${c.trim()}`);
    }
  }
  assert.deepEqual(problems, []);
});
