import net from 'node:net';
import path from 'node:path';
import { shortId } from '../../engine/state/index.js';
import type { EnginePaths } from '../../engine/state/index.js';

/**
 * Copies this process's stdin to a container's attach socket (`-i`); with a pty (`-t`) the terminal is put in raw
 * mode so keys reach the container as typed. Returns the function that detaches and restores the terminal.
 */
export function attachStdin(paths: EnginePaths, containerId: string, tty: boolean): () => void {
  const socket = net.createConnection(path.join(paths.runContainers, shortId(containerId), 'attach'));
  socket.on('error', () => undefined);
  process.stdin.pipe(socket);
  const raw = tty && process.stdin.isTTY === true;
  if (raw) process.stdin.setRawMode(true);
  return () => {
    if (raw) process.stdin.setRawMode(false);
    process.stdin.unpipe(socket);
    process.stdin.pause();
    socket.destroy();
  };
}
