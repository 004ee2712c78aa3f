/** Keys to actions: a pure mapping, so the key bindings are unit-tested without a terminal. */
import type { TuiEvent, TuiState } from './state.js';

/** The subset of ink's `Key` the bindings read. */
export interface KeyInfo {
  readonly upArrow?: boolean;
  readonly downArrow?: boolean;
  readonly return?: boolean;
  readonly escape?: boolean;
  readonly ctrl?: boolean;
  readonly backspace?: boolean;
  readonly delete?: boolean;
}

/** Something the controller does (I/O), as opposed to a view change. */
export type TuiCommand = 'detach' | 'quit' | 'interrupt' | 'restart' | 'stop';

export type KeyAction = TuiEvent | { readonly kind: 'command'; readonly command: TuiCommand };

const command = (name: TuiCommand): KeyAction => ({ kind: 'command', command: name });

/** What a key press does in `state`; an empty list when the key is not bound. */
export function keyActions(state: TuiState, input: string, key: KeyInfo): KeyAction[] {
  if (key.ctrl === true && input === 'c') return [command('interrupt')];
  if (state.filterDraft !== undefined) {
    if (key.return === true) return [{ kind: 'filter.commit' }];
    if (key.escape === true) return [{ kind: 'filter.edit', text: undefined }, { kind: 'all' }];
    if (key.backspace === true || key.delete === true) {
      return [{ kind: 'filter.edit', text: [...state.filterDraft].slice(0, -1).join('') }];
    }
    if (key.ctrl === true || input === '') return [];
    return [{ kind: 'filter.edit', text: state.filterDraft + input }];
  }
  if (key.upArrow === true || input === 'k') return [{ kind: 'select', delta: -1 }];
  if (key.downArrow === true || input === 'j') return [{ kind: 'select', delta: 1 }];
  if (key.return === true) return [{ kind: 'solo' }];
  if (key.escape === true && state.help) return [{ kind: 'help' }];
  switch (input) {
    case 'a':
      return [{ kind: 'all' }];
    case '/':
      return [{ kind: 'filter.edit', text: '' }];
    case '?':
      return [{ kind: 'help' }];
    case 'r':
      return [command('restart')];
    case 's':
      return [command('stop')];
    case 'd':
      return [command('detach')];
    case 'q':
      return [command('quit')];
    default:
      return [];
  }
}
