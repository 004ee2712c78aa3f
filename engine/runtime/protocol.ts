import { EngineError } from '../errors.js';

/** Messages of the native runtime (native/PROTOCOL.md), one JSON object per line. */
export type RuntimeMessage =
  | { v: 1; type: 'started'; pid: number; monitor: number }
  | { v: 1; type: 'done'; entries: number; bytes: number }
  | { v: 1; type: 'error'; step: string; errno: number; message: string; code: number };

export function parseRuntimeMessage(line: string): RuntimeMessage {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw new EngineError(
      'internal',
      `unreadable message from the native runtime: ${JSON.stringify(line.slice(0, 200))}`,
    );
  }
  const message = value as Partial<RuntimeMessage> | null;
  if (message === null || typeof message !== 'object' || message.v !== 1 || typeof message.type !== 'string') {
    throw new EngineError('internal', `unexpected message from the native runtime: ${line.slice(0, 200)}`, {
      hint: 'the native helper and the engine disagree on the protocol version; rebuild with: npm run build',
    });
  }
  return message as RuntimeMessage;
}

/** The EngineError a runtime `error` message stands for. */
export function runtimeError(
  message: Extract<RuntimeMessage, { type: 'error' }>,
  context: string,
  hint?: string,
): EngineError {
  const kind = message.code === 126 || message.code === 127 ? 'invalid' : 'runtime';
  return new EngineError(kind, `${context}: ${message.message}`, {
    step: message.step,
    errno: message.errno,
    exitCode: message.code,
    hint,
  });
}
