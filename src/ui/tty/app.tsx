/** The root component: the view plus key input forwarded to the controller. */
import { useInput } from 'ink';
import type { ReactElement } from 'react';
import type { KeyInfo } from './keys.js';
import type { TuiState } from './state.js';
import { TuiView, type ViewEnv } from './views.js';

export interface AppProps {
  readonly state: TuiState;
  readonly env: ViewEnv;
  readonly onKey: (input: string, key: KeyInfo) => void;
  /** False when stdin cannot be put in raw mode (keys are then ignored). */
  readonly interactive: boolean;
}

export function App({ state, env, onKey, interactive }: AppProps): ReactElement {
  useInput((input, key) => onKey(input, key), { isActive: interactive });
  return <TuiView state={state} env={env} />;
}
