/**
 * Runtime limits: when an agent CLI reports a rate or usage limit, the process that saw it writes
 * `.loom/limits/<runtime>.json` with the time the limit resets (or a backoff when the CLI did not
 * say); an overloaded provider pauses its runtime for a shorter backoff the same way. Until then the daemon dispatches no work to that runtime, and roles with a fallback
 * runtime use it instead. An expired file is simply ignored.
 */
import fs from 'node:fs';
import path from 'node:path';
import { readJsonFile, writeFileAtomic } from '../fs/atomic-file.js';

/** Backoff when a limit comes without a reset time, ms. */
export const DEFAULT_LIMIT_BACKOFF_MS = 15 * 60_000;

/** Pause of a runtime whose provider reported itself overloaded (5xx, 529) after the CLI's own retries, ms. */
export const OVERLOADED_BACKOFF_MS = 5 * 60_000;

export interface RuntimeLimit {
  runtime: string;
  /** ISO time the limit ends. */
  until: string;
  reason: string;
}

export function recordLimit(dir: string, runtime: string, resetAt: string | undefined, reason: string, now: Date): RuntimeLimit {
  const until = resetAt && Date.parse(resetAt) > now.getTime() ? resetAt : new Date(now.getTime() + DEFAULT_LIMIT_BACKOFF_MS).toISOString();
  const limit = { runtime, until, reason };
  fs.mkdirSync(dir, { recursive: true });
  writeFileAtomic(path.join(dir, `${runtime}.json`), JSON.stringify(limit));
  return limit;
}

/** Limits still in force at `now`, by runtime. */
export function activeLimits(dir: string, now: Date): Record<string, RuntimeLimit> {
  const result: Record<string, RuntimeLimit> = {};
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return result;
  }
  for (const name of names) {
    if (!name.endsWith('.json')) continue;
    try {
      const limit = readJsonFile(path.join(dir, name)) as RuntimeLimit | undefined;
      if (limit && Date.parse(limit.until) > now.getTime()) result[limit.runtime] = limit;
    } catch {
      // torn or foreign file: ignored
    }
  }
  return result;
}
