/**
 * Deterministic fault injection for tests: with `LOOM_TEST_CRASH_AT=<point>[,<point>…]` in its
 * environment, a Loom process kills itself with SIGKILL when it reaches one of those named points,
 * exactly as a `kill -9` at that moment would. The points are the crash windows docs/shepherd.md
 * lists. An entry `<point>@<issue>` fires only for that issue (in a shepherd host, where one
 * process runs many issues). Before the kill it writes `LOOM_TEST_CRASH_AT: <point>@<issue>
 * reached` to stderr, so a test can tell which entry fired. Without the variable this is a no-op;
 * agents never see it (their environment is built from an allowlist).
 */
export function crashPoint(name: string, issue?: number): void {
  const at = process.env.LOOM_TEST_CRASH_AT;
  if (at === undefined || at === '') return;
  const hit = at.split(',').some((entry) => {
    const [point = '', only] = entry.trim().split('@');
    return point === name && (only === undefined || Number(only) === issue);
  });
  if (!hit) return;
  try {
    process.stderr.write(`LOOM_TEST_CRASH_AT: ${name}@${issue ?? ''} reached\n`);
  } catch {
    // the kill matters, not the line
  }
  process.kill(process.pid, 'SIGKILL');
}
