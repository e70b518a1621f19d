/** `abaca completion bash`: a completion script generated from the command tree itself. */
import type { Command } from 'commander';
import { SHOW_FORMATS } from './output.ts';

function optionWords(cmd: Command): string[] {
  return cmd.options
    .flatMap((o) => [o.long, o.short].filter((x): x is string => Boolean(x)))
    .concat('--help');
}

/** Bash needs keys it can index: the root is `abaca`, a subcommand `abaca share create`. */
export function bashCompletion(program: Command): string {
  const commands: [string, string][] = [];
  const options: [string, string][] = [];
  const walk = (cmd: Command, path: string) => {
    commands.push([path, cmd.commands.map((c) => c.name()).join(' ')]);
    options.push([path, optionWords(cmd).join(' ')]);
    for (const sub of cmd.commands) walk(sub, `${path} ${sub.name()}`);
  };
  walk(program, 'abaca');
  const assoc = (name: string, entries: [string, string][]) =>
    `declare -gA ${name}=(\n${entries.map(([k, v]) => `  [${JSON.stringify(k)}]=${JSON.stringify(v)}`).join('\n')}\n)`;
  return `# bash completion for abaca. Load it with:
#   source <(abaca completion bash)
# or install it: abaca completion bash > /etc/bash_completion.d/abaca
${assoc('_abaca_commands', commands)}
${assoc('_abaca_options', options)}
_abaca_global_options=${JSON.stringify(optionWords(program).join(' '))}

_abaca_complete() {
  local cur prev path key word i
  cur="\${COMP_WORDS[COMP_CWORD]}"
  prev="\${COMP_WORDS[COMP_CWORD-1]}"
  path="abaca"
  for ((i = 1; i < COMP_CWORD; i++)); do
    word="\${COMP_WORDS[i]}"
    [[ "$word" == -* ]] && continue
    key="$path $word"
    if [[ -n "\${_abaca_commands[$key]+set}" ]]; then path="$key"; fi
  done
  case "$prev" in
    -f|--format) COMPREPLY=($(compgen -W "${SHOW_FORMATS.join(' ')}" -- "$cur")); return 0 ;;
  esac
  if [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "\${_abaca_options[$path]} $_abaca_global_options" -- "$cur"))
  else
    COMPREPLY=($(compgen -W "\${_abaca_commands[$path]}" -- "$cur"))
  fi
  return 0
}
complete -F _abaca_complete abaca
`;
}
