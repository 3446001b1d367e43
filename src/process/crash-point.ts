import fs from 'node:fs';
import path from 'node:path';

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

/**
 * The other half of fault injection: with `LOOM_TEST_PAUSE_AT=<point>=<dir>`, a Loom process that
 * reaches the named point creates `<dir>/<point>.reached` and waits (at most a minute) for
 * `<dir>/<point>.go`, so a test can change the world at exactly that moment (kill a daemon, take
 * a lock). Without the variable this is a no-op.
 */
export async function pausePoint(name: string): Promise<void> {
  const at = process.env.LOOM_TEST_PAUSE_AT;
  if (at === undefined || at === '') return;
  const dir = at.split(',').flatMap((entry) => {
    const eq = entry.indexOf('=');
    return eq > 0 && entry.slice(0, eq).trim() === name ? [entry.slice(eq + 1).trim()] : [];
  })[0];
  if (dir === undefined) return;
  const file = (suffix: string) => path.join(dir, `${name.replace(/[^\w.-]/g, '_')}.${suffix}`);
  fs.writeFileSync(file('reached'), String(process.pid));
  const deadline = Date.now() + 60_000;
  while (!fs.existsSync(file('go')) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
}
