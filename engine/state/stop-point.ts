/**
 * A test hook for crash tests: with `TSFIG_TEST_STOP_AT=<point>` in its environment, a process stops itself
 * (SIGSTOP) when it reaches that point, so the test can `kill -9` it exactly there, or look at the state while it
 * is stopped there and let it go on (SIGCONT). Without the variable it does nothing. Points: `image-before-record`
 * (an image's layers are in the store, its config blob and record not yet), `image-after-blob` (the config blob is
 * in place, not the image record; the store lock is held).
 */
export function stopPoint(point: string, env: NodeJS.ProcessEnv = process.env): void {
  if (env.TSFIG_TEST_STOP_AT === point) process.kill(process.pid, 'SIGSTOP');
}
