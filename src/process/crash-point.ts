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
  if (!crashArmed(process.env.LOOM_TEST_CRASH_AT, name, issue)) return;
  try {
    process.stderr.write(`LOOM_TEST_CRASH_AT: ${name}@${issue ?? ''} reached\n`);
  } catch {
    // the kill matters, not the line
  }
  process.kill(process.pid, 'SIGKILL');
}

/** Whether `LOOM_TEST_CRASH_AT`'s value `at` names the point `name` (for `issue`, when it says which). */
export function crashArmed(at: string | undefined, name: string, issue?: number): boolean {
  if (at === undefined || at === '') return false;
  return at.split(',').some((entry) => {
    const [point = '', only] = entry.trim().split('@');
    return point === name && (only === undefined || (issue !== undefined && Number(only) === issue));
  });
}
