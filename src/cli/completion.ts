/**
 * `dockpack completion bash|zsh|fish`: prints a shell completion script. The command tree
 * (groups, subcommands, options) is read from the registered commands when the script is
 * generated; at completion time the script completes branch names (`git for-each-ref`) after
 * commands that take a branch, and package files (`*.dockpack.tar`) after `packages import` and
 * `packages validate`, and file names elsewhere.
 */
import { Command } from "commander";
import { GROUPS } from "./groups.js";

/** One command path and what may follow it. */
interface Node {
  path: string; // e.g. "env up"
  words: string[]; // subcommands and options
}

async function commandTree(): Promise<Node[]> {
  const root = new Command("dockpack");
  for (const g of GROUPS) if (g.name !== "completion") (await g.load()).register(root);
  const nodes: Node[] = [];
  const walk = (cmd: Command, path: string) => {
    const words = [
      ...cmd.commands.map((c) => c.name()),
      ...cmd.options.map((o) => o.long ?? o.short ?? "").filter(Boolean),
      "--help",
    ];
    nodes.push({ path, words });
    for (const c of cmd.commands) walk(c, path ? `${path} ${c.name()}` : c.name());
  };
  walk(root, "");
  const top = nodes.find((n) => n.path === "");
  if (top)
    top.words.push("completion", "--json", "--quiet", "-q", "-C", "--log-level", "--no-color", "--version");
  return nodes;
}

/** Commands whose first argument is a branch / a package file. */
const BRANCH_COMMANDS = ["env create", "env up", "env down", "env info", "env remove", "packages export"];
const PACKAGE_COMMANDS = ["packages import", "packages validate"];

function bash(nodes: Node[]): string {
  const cases = nodes.map((n) => `    "${n.path}") words="${n.words.join(" ")}" ;;`).join("\n");
  return `# dockpack bash completion: source <(dockpack completion bash)
_dockpack() {
  local cur path="" w i words
  cur="\${COMP_WORDS[COMP_CWORD]}"
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    case "$w" in -C|--log-level) ((i++)); continue ;; -*) continue ;; esac
    case " $(_dockpack_words "$path") " in *" $w "*) path="\${path:+$path }$w" ;; esac
  done
  case "$path" in
    ${BRANCH_COMMANDS.map((c) => `"${c}"`).join("|")})
      if [[ "$cur" != -* ]]; then COMPREPLY=($(compgen -W "$(git for-each-ref --format='%(refname:short)' refs/heads 2>/dev/null)" -- "$cur")); return; fi ;;
    ${PACKAGE_COMMANDS.map((c) => `"${c}"`).join("|")})
      if [[ "$cur" != -* ]]; then COMPREPLY=($(compgen -f -X '!*.dockpack.tar' -- "$cur") $(compgen -d -- "$cur")); return; fi ;;
  esac
  words="$(_dockpack_words "$path")"
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
  [[ \${#COMPREPLY[@]} -eq 0 ]] && COMPREPLY=($(compgen -f -- "$cur"))
}
_dockpack_words() {
  local words=""
  case "$1" in
${cases}
  esac
  echo "$words"
}
complete -o filenames -F _dockpack dockpack
`;
}

function zsh(nodes: Node[]): string {
  return `#compdef dockpack
# dockpack zsh completion: source <(dockpack completion zsh)
autoload -U +X bashcompinit && bashcompinit
${bash(nodes)}`;
}

function fish(nodes: Node[]): string {
  const lines = ["# dockpack fish completion: dockpack completion fish | source", "complete -c dockpack -f"];
  for (const n of nodes) {
    const depth = n.path ? n.path.split(" ") : [];
    const cond = depth.length
      ? `__fish_seen_subcommand_from ${depth[depth.length - 1]}`
      : "__fish_use_subcommand";
    const subs = n.words.filter((w) => !w.startsWith("-"));
    const opts = n.words.filter((w) => w.startsWith("--")).map((w) => w.slice(2));
    if (subs.length) lines.push(`complete -c dockpack -n '${cond}' -a '${subs.join(" ")}'`);
    for (const o of opts) lines.push(`complete -c dockpack -n '${cond}' -l ${o}`);
  }
  for (const c of BRANCH_COMMANDS) {
    const [, sub] = c.split(" ");
    lines.push(
      `complete -c dockpack -n '__fish_seen_subcommand_from ${sub}' -a '(git for-each-ref --format="%(refname:short)" refs/heads 2>/dev/null)'`,
    );
  }
  lines.push(
    `complete -c dockpack -n '__fish_seen_subcommand_from import validate' -k -a '(__fish_complete_suffix .dockpack.tar)'`,
  );
  return `${lines.join("\n")}\n`;
}

/** Adds `dockpack completion <shell>`. */
export function register(program: Command): void {
  program
    .command("completion")
    .description("print a shell completion script (commands, options, branch names, package files)")
    .argument("<shell>", "bash, zsh or fish")
    .addHelpText(
      "after",
      "\nExamples:\n  $ source <(dockpack completion bash)        # in ~/.bashrc\n  $ source <(dockpack completion zsh)         # in ~/.zshrc\n  $ dockpack completion fish | source         # in ~/.config/fish/config.fish\n",
    )
    .action(async (shell: string) => {
      const render = { bash, zsh, fish }[shell];
      if (!render) {
        process.stderr.write(`error: unknown shell '${shell}'\nhint: use bash, zsh or fish.\n`);
        process.exitCode = 2;
        return;
      }
      process.stdout.write(render(await commandTree()));
    });
}
