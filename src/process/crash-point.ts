/**
 * Deterministic fault injection for tests: with `LOOM_TEST_CRASH_AT=<point>[,<point>…]` in its
 * environment, a Loom process kills itself with SIGKILL when it reaches one of those named points,
 * exactly as a `kill -9` at that moment would. The points are the crash windows docs/shepherd.md
 * lists. Without the variable this is a no-op; agents never see it (their environment is built
 * from an allowlist).
 */
export function crashPoint(name: string): void {
  const at = process.env.LOOM_TEST_CRASH_AT;
  if (at === undefined || at === '') return;
  if (at.split(',').some((p) => p.trim() === name)) process.kill(process.pid, 'SIGKILL');
}
