/** Signal files between a test and the racer processes it starts (the lock race fixtures). */
import fs from 'node:fs';

const SIGNAL_DEADLINE_MS = 60_000;

/** Waits for `file` to exist. Polls rather than watching: 1 ms keeps the racers together. */
export async function waitForFile(file: string): Promise<void> {
  const deadline = Date.now() + SIGNAL_DEADLINE_MS;
  while (!fs.existsSync(file)) {
    if (Date.now() > deadline) throw new Error(`no signal ${file} within ${SIGNAL_DEADLINE_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}
