/**
 * What the daemon needs of the queue without loading it: `bullmq` and `ioredis` cost an iteration
 * of the local executor about 200 ms of CPU to load, so `shepherd-queue.ts` is imported only when
 * the executor is `bullmq`.
 */
import { LoomError } from '../core/errors.js';

export class QueueUnavailableError extends LoomError {
  constructor(url: string, cause: unknown) {
    super('queue_unavailable', `Redis at ${redact(url)} is unavailable: ${(cause as Error).message}`, { retryable: true, cause });
  }
}

/** The URL without its password, for messages. */
export function redact(url: string): string {
  return url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');
}
