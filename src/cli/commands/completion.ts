import type { Command } from 'commander';
import { TsfigError } from '../../errors.js';

/** Compose verbs that take service names, completed from `tsfig config --services`. */
const SERVICE_VERBS = [
  'attach',
  'build',
  'create',
  'events',
  'exec',
  'images',
  'kill',
  'logs',
  'pause',
  'port',
  'ps',
  'pull',
  'push',
  'restart',
  'rm',
  'run',
  'scale',
  'start',
  'stats',
  'stop',
  'top',
  'unpause',
  'up',
  'wait',
  'watch',
];
const OTHER_VERBS = [
  'config',
  'container',
  'cp',
  'down',
  'graph',
  'image',
  'kube',
  'login',
  'logout',
  'ls',
  'network',
  'publish',
  'version',
  'volume',
];
const GROUPS: Record<string, readonly string[]> = {
  container: [
    'attach',
    'commit',
    'cp',
    'create',
    'exec',
    'export',
    'inspect',
    'kill',
    'logs',
    'ls',
    'pause',
    'port',
    'prune',
    'restart',
    'rm',
    'run',
    'start',
    'stats',
    'stop',
    'top',
    'unpause',
    'wait',
  ],
  kube: ['generate', 'play'],
  image: ['build', 'history', 'import', 'inspect', 'load', 'ls', 'prune', 'pull', 'push', 'rm', 'save', 'tag'],
  network: ['connect', 'create', 'disconnect', 'inspect', 'ls', 'prune', 'rm'],
  volume: ['create', 'inspect', 'ls', 'prune', 'rm'],
};

/** The bash completion script: verbs, group sub-verbs, and the project's services (read live from the project). */
export function bashCompletion(): string {
  const groups = Object.entries(GROUPS)
    .map(([group, verbs]) => `    ${group}) COMPREPLY=($(compgen -W "${verbs.join(' ')}" -- "$cur")); return ;;`)
    .join('\n');
  return `# tsfig bash completion: eval "$(tsfig completion bash)"
_tsfig() {
  local cur verb i
  cur="\${COMP_WORDS[COMP_CWORD]}"
  verb=""
  for ((i = 1; i < COMP_CWORD; i++)); do
    case "\${COMP_WORDS[i]}" in
      -f|--file|-p|--project-name|--project-directory|--env-file|--profile|--progress|--parallel) i=$((i + 1)) ;;
      -*) ;;
      *) verb="\${COMP_WORDS[i]}"; break ;;
    esac
  done
  if [ -z "$verb" ]; then
    COMPREPLY=($(compgen -W "${[...SERVICE_VERBS, ...OTHER_VERBS].sort().join(' ')}" -- "$cur"))
    return
  fi
  case "$verb" in
${groups}
    ${SERVICE_VERBS.join('|')})
      COMPREPLY=($(compgen -W "$(tsfig config --services 2>/dev/null)" -- "$cur")) ;;
  esac
}
complete -F _tsfig tsfig
`;
}

/** The zsh completion script, through zsh's bash-completion compatibility. */
export function zshCompletion(): string {
  return `# tsfig zsh completion: eval "$(tsfig completion zsh)"
autoload -U +X bashcompinit && bashcompinit
${bashCompletion()}`;
}

export function registerCompletionCommand(program: Command): void {
  program
    .command('completion')
    .description('print a shell completion script (bash or zsh): eval "$(tsfig completion bash)"')
    .argument('<shell>', 'bash or zsh')
    .action((shell: string) => {
      if (shell === 'bash') process.stdout.write(bashCompletion());
      else if (shell === 'zsh') process.stdout.write(zshCompletion());
      else throw new TsfigError('usage', `completion: unsupported shell "${shell}"`, { hint: 'use bash or zsh' });
    });
}
