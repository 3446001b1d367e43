// End-to-end tests run the built `loom` binary as a user would: build it once, fresh, first.
import { execFileSync } from 'node:child_process';

export function setup(): void {
  execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
}
