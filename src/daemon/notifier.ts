/**
 * Notifications (config `notify`): each iteration reads the events written since the last one
 * (from a cursor kept in the state file) and tells a human about those that need one — an issue
 * blocked, a budget reached, a runtime limited, the daemon crashed, the post-merge guard fired —
 * by running `notify.command` with the event as JSON on stdin and/or POSTing it to
 * `notify.webhook`.
 *
 * Invariants owned here: every event is looked at once per cursor (a crash between a delivery and
 * the state save repeats it: at least once, never silently lost); repeats of the same budget or
 * limit notify once (`notifyKey`); a failed delivery is a warning, never a failed iteration; the
 * webhook URL (which often carries a secret) is never written to a warning or the event log.
 */
import path from 'node:path';
import type { LoomConfig } from '../core/config-model.js';
import type { LoomPaths } from '../config/paths.js';
import type { DaemonState } from '../core/daemon-state.js';
import { addWarning } from '../core/daemon-state.js';
import type { LoomEvent } from '../core/events.js';
import { describeEvent, NOTIFY_KINDS, notifyKey, NOTIFY_TYPES } from '../core/events.js';
import type { EventCursor } from '../process/event-log.js';
import { EventLog } from '../process/event-log.js';
import { runCommand } from '../process/run-command.js';

/** A delivery taking longer than this fails, ms. */
const DELIVERY_TIMEOUT_MS = 10_000;
/** Deliveries made at once. */
const MAX_PARALLEL = 16;
/** How long a notified key is remembered, ms. */
const KEY_MEMORY_MS = 36 * 3_600_000;

/** The notifier's place in the event log and what it has already told, kept in the state file. */
interface NotifyState {
  cursor: EventCursor;
  /** notifyKey → ISO time it was notified. */
  sent: Record<string, string>;
}

function readNotifyState(state: DaemonState): NotifyState | null {
  const raw = state.notify_state as Partial<NotifyState> | undefined;
  if (typeof raw !== 'object' || raw === null || typeof raw.cursor?.ino !== 'number' || typeof raw.cursor.offset !== 'number') return null;
  return { cursor: raw.cursor, sent: typeof raw.sent === 'object' && raw.sent !== null ? raw.sent : {} };
}

/** Starts the notifier at the end of the event log unless it has a place already (the daemon calls it at start). */
export function ensureNotifyCursor(paths: LoomPaths, state: DaemonState): void {
  if (readNotifyState(state) === null) state.notify_state = { cursor: new EventLog(paths.events).end(), sent: {} } satisfies NotifyState;
}

/** The text of a notification: which repository, and the event in one line. */
export function notificationText(paths: LoomPaths, event: LoomEvent): string {
  return `Loom (${path.basename(paths.root)}): ${describeEvent(event)}`;
}

/** Delivers the notifications due since the last call and moves the cursor past them. */
export async function sendNotifications(opts: { paths: LoomPaths; config: LoomConfig; state: DaemonState; now: Date }): Promise<void> {
  const { paths, config, state, now } = opts;
  ensureNotifyCursor(paths, state);
  const current = readNotifyState(state) as NotifyState;
  const log = new EventLog(paths.events);
  const { events, cursor } = log.readSince(current.cursor);
  const sent = Object.fromEntries(Object.entries(current.sent).filter(([, at]) => now.getTime() - Date.parse(at) < KEY_MEMORY_MS));
  state.notify_state = { cursor, sent } satisfies NotifyState;
  const { command, webhook } = config.notify;
  if (command === undefined && webhook === undefined) return;
  const wanted = new Set(config.notify.on.map((kind) => NOTIFY_KINDS[kind]));
  const due: LoomEvent[] = [];
  for (const event of events) {
    if (!NOTIFY_TYPES.includes(event.type) || !wanted.has(event.type)) continue;
    const key = notifyKey(event);
    if (key !== null && sent[key] !== undefined) continue;
    if (key !== null) sent[key] = now.toISOString();
    due.push(event);
  }
  // Delivered side by side (a few at a time), so a stalled command or webhook costs an iteration
  // one delivery timeout, not one per event; failures are reported in the events' order.
  const deliver = async (event: LoomEvent): Promise<string[]> => {
    const text = notificationText(paths, event);
    const [viaCommand, viaWebhook] = await Promise.all([
      command !== undefined ? runNotifyCommand(command, paths.root, event, text) : null,
      webhook !== undefined ? postWebhook(webhook, event, text) : null,
    ]);
    return [...(viaCommand !== null ? [`notify.command ${viaCommand}`] : []), ...(viaWebhook !== null ? [`notify.webhook ${viaWebhook}`] : [])];
  };
  const outcomes: string[][] = [];
  for (let i = 0; i < due.length; i += MAX_PARALLEL) outcomes.push(...(await Promise.all(due.slice(i, i + MAX_PARALLEL).map(deliver))));
  due.forEach((event, i) => {
    for (const failure of outcomes[i] ?? []) {
      addWarning(state, now.toISOString(), `notification of ${event.type} failed: ${failure}`);
      log.emit('notify.failed', { message: failure, ...(event.issue !== undefined ? { issue: event.issue } : {}) });
    }
  });
}

/** Runs the notify command with the event on stdin; a problem in a few words, or null. */
async function runNotifyCommand(command: string, cwd: string, event: LoomEvent, text: string): Promise<string | null> {
  const input = JSON.stringify(event);
  const result = await runCommand({
    // The event goes in as data on stdin (never into the command line).
    command: `printf '%s\\n' "$LOOM_EVENT" | (${command})`,
    cwd,
    env: { ...process.env, LOOM_EVENT: input, LOOM_EVENT_TYPE: event.type, LOOM_EVENT_TEXT: text, LOOM_EVENT_ISSUE: event.issue === undefined ? '' : String(event.issue) },
    stallTimeout: DELIVERY_TIMEOUT_MS,
    timeout: DELIVERY_TIMEOUT_MS,
  });
  if (result.outcome === 'exited' && result.exitCode === 0) return null;
  return result.outcome === 'exited' ? `exited with code ${result.exitCode ?? '?'}` : result.outcome === 'spawn-error' ? `could not start (${result.error ?? '?'})` : `${result.outcome} after ${DELIVERY_TIMEOUT_MS / 1000}s`;
}

/** POSTs `{ text, event }` as JSON; a problem in a few words (never the URL), or null. */
async function postWebhook(url: string, event: LoomEvent, text: string): Promise<string | null> {
  try {
    const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', 'user-agent': 'loom-notify' }, body: JSON.stringify({ text, event }), signal: AbortSignal.timeout(DELIVERY_TIMEOUT_MS), redirect: 'error' });
    await res.arrayBuffer();
    return res.ok ? null : `answered ${res.status}`;
  } catch (error) {
    const name = (error as Error).name;
    return name === 'TimeoutError' ? `did not answer within ${DELIVERY_TIMEOUT_MS / 1000}s` : 'could not be reached';
  }
}
