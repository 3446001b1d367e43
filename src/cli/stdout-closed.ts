/**
 * The commands that keep printing until Ctrl+C (`loom events -f`, `loom status --watch`,
 * `loom logs -f`) end quietly, with exit code 0, when whoever reads their output goes away
 * (`… | head`, a closed pager): the next write fails with EPIPE, and there is nobody left to
 * print anything to — as `tail -f | head` ends.
 */
export function endQuietlyWhenStdoutCloses(): void {
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
    process.exitCode = 0;
    // Nothing is pending for a reader that is gone; a follower has nothing to clean up.
    process.exit();
  });
}

/**
 * Every command: a reader that goes away before the output ends (`loom issue list --json |
 * head -c 10`) is not an error of the command. The write fails with EPIPE; the command finishes
 * what it was doing (a half-done action is worse than lost output) and exits with its own code,
 * without a stack trace. What it still prints goes nowhere.
 */
export function ignoreClosedOutput(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EPIPE') throw error;
    });
  }
}
