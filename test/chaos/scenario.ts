/**
 * A chaos run's whole schedule, derived from one seed (pure: same seed, same schedule): what each
 * issue's agents do, which crash window is injected at which issue, when a random process is
 * killed, when the human acts, and (GitHub mode) when the tracker misbehaves.
 */
import { Random } from './random.js';

export type Mode = 'local' | 'github';

/**
 * What an issue's builder does: commit its change, leave it uncommitted (Loom commits it), say
 * `NO CHANGES NEEDED: <reason>`, exit 0 having done and said nothing, print nothing and hang
 * (stalled), print forever and never finish (timeout), or fail.
 */
export type BuilderBehaviour = 'commit' | 'uncommitted' | 'no-change' | 'nothing' | 'silent' | 'chatty' | 'fail';

/** The judge approves at once, or asks for changes in its first round (a doctor round follows). */
export type JudgeBehaviour = 'approve' | 'changes-once';

/**
 * Crash windows, each injected once at one issue. The process killed (SIGKILL) is the shepherd or
 * support role doing the step; how it is reached is in parentheses.
 */
export const CRASH_POINTS = {
  'builder-committed': 'the builder committed its work; its shepherd is killed before the builder returns (agent)',
  'leftover-committed': "Loom committed the builder's leftovers; the shepherd is killed before its `built` checkpoint (git)",
  pushed: 'the branch is pushed; the shepherd is killed before it opens the PR (git)',
  'pr-created': 'the host created the PR; the shepherd is killed before it hears back or writes its checkpoint (fake GitHub)',
  judging: 'the shepherd is killed while its judge runs (agent)',
  'judge-killed': 'the judge agent dies (SIGKILL): the issue is blocked and support roles must leave its PR alone (agent)',
  'doctor-committed': 'the doctor committed a fix; its shepherd is killed before the doctor returns (agent)',
  'main-moved': 'main moved to the merge commit; the merger is killed before the tracker knows (git)',
  'merged-on-host': 'the host merged the PR; the merger is killed before it hears back (fake GitHub)',
  'issue-closed': 'the host closed the issue; the closer is killed before it hears back (fake GitHub)',
  'worktree-remove': 'the issue is closed; the shepherd is killed before it removes the worktree (git)',
  'branch-delete': 'the worktree is removed; the shepherd is killed before it deletes the branch (git)',
  // Through the test-only switch LOOM_TEST_CRASH_AT (the process kills itself at a named point),
  // set for one shepherd of the issue by the run's CLI entry wrapper; reported as unavailable in
  // a build without the switch.
  'at:pr:created': 'the PR is opened; the shepherd is killed before its `pr-opened` checkpoint (LOOM_TEST_CRASH_AT)',
  'at:judge:reviewed': 'the review is posted; the shepherd is killed before its `judged` checkpoint (LOOM_TEST_CRASH_AT)',
  'at:merge:pr-marked': 'the PR is marked merged; the merger is killed before it closes the issue (LOOM_TEST_CRASH_AT)',
  'at:checkpoint:before-rename': "a checkpoint's temp file is written; the shepherd is killed before the rename (LOOM_TEST_CRASH_AT)",
} as const;
export type CrashPoint = keyof typeof CRASH_POINTS;

const SWITCH_POINTS: CrashPoint[] = ['at:pr:created', 'at:judge:reviewed', 'at:merge:pr-marked', 'at:checkpoint:before-rename'];
const LOCAL_POINTS: CrashPoint[] = ['builder-committed', 'leftover-committed', 'judging', 'judge-killed', 'doctor-committed', 'main-moved', 'worktree-remove', 'branch-delete', ...SWITCH_POINTS];
const GITHUB_POINTS: CrashPoint[] = ['leftover-committed', 'pushed', 'pr-created', 'judge-killed', 'merged-on-host', 'issue-closed', 'branch-delete', ...SWITCH_POINTS];

export interface IssuePlan {
  /** 1-based position; the tracker number is learnt when the issue is created. */
  index: number;
  title: string;
  builder: BuilderBehaviour;
  judge: JudgeBehaviour;
  /** Seconds the builder works. */
  delay: number;
  crash: CrashPoint | null;
  /** The reason a no-change builder gives (it must reach the closing comment). */
  reason: string;
}

/**
 * Where the shepherds run: one `loom shepherd N` process each (`executor.shepherds: "process"`,
 * this suite's default, written into each run's configuration), or all inside one
 * `loom shepherd-host` process (`"host"`, Loom's default).
 */
export type Shepherds = 'process' | 'host';

/**
 * `host`: the `loom shepherd-host` process, with every run in it. In host mode there is no
 * shepherd process to kill: the schedule's shepherd kills kill the host instead (the closest
 * thing: the process the shepherd's lifecycle runs in).
 */
export type KillTarget = 'daemon' | 'iteration' | 'shepherd' | 'agent' | 'role' | 'host';

export interface Kill {
  /** Ms after the daemon first started. */
  at: number;
  target: KillTarget;
  /** Which of the live candidates (sorted), as a fraction of their number. */
  pick: number;
  /** After a daemon kill: ms until it is started again. */
  restartAfter: number;
}

/**
 * What a human does to an issue mid-run: close it ("won't do"), label it `loom:blocked`, ask for
 * `loom:abort`, take `loom:building` off (and put `loom:issue` back a little later), or take
 * `loom:issue` off an issue before it is claimed.
 */
export type HumanKind = 'close' | 'block' | 'abort' | 'unclaim' | 'unready';

export interface HumanAction {
  at: number;
  kind: HumanKind;
  pick: number;
  /** `unclaim`: ms until `loom:issue` is put back. */
  requeueAfter: number;
}

/**
 * Tracker faults (GitHub mode, Loom's requests only): 5xx before the request is carried out, 429
 * with retry-after, a 5xx after it was carried out (ambiguous), a slow answer, a dropped
 * connection (a timeout), a malformed record in the next issue listing.
 */
export type FaultKind = '5xx' | '429' | 'ambiguous-5xx' | 'slow' | 'drop' | 'malformed';

export interface Fault {
  at: number;
  kind: FaultKind;
  /** 5xx: how many requests fail; slow/drop: how long the answer is held, ms; 429: retry-after, s. */
  amount: number;
}

export interface Scenario {
  seed: number;
  mode: Mode;
  shepherds: Shepherds;
  issues: IssuePlan[];
  kills: Kill[];
  humans: HumanAction[];
  faults: Fault[];
  /** How long random kills, human actions and faults go on, ms. */
  chaosMs: number;
}

export interface ScenarioOptions {
  issues: number;
  chaosMs: number;
  /** Mean gap between random kills, ms. */
  killGapMs: number;
  /** Where the shepherds run; `process` when absent. */
  shepherds?: Shepherds;
}

export function defaultOptions(mode: Mode, short: boolean): ScenarioOptions {
  if (mode === 'github') return short ? { issues: 18, chaosMs: 16_000, killGapMs: 3_000 } : { issues: 30, chaosMs: 40_000, killGapMs: 2_500 };
  return short ? { issues: 32, chaosMs: 24_000, killGapMs: 2_400 } : { issues: 40, chaosMs: 45_000, killGapMs: 2_000 };
}

export function makeScenario(seed: number, mode: Mode, options: ScenarioOptions): Scenario {
  const random = new Random(seed * 7919 + (mode === 'github' ? 1 : 0));
  const n = options.issues;
  const shepherds = options.shepherds ?? 'process';
  // A fixed mix, shuffled: one of each troublesome builder, a few no-change, the rest real work.
  const special: BuilderBehaviour[] = ['silent', 'chatty', 'fail', 'nothing', 'no-change', 'no-change'];
  if (n >= 24) special.push('no-change');
  const builders = random.shuffle([...special, ...Array.from({ length: Math.max(0, n - special.length) }, (_, i): BuilderBehaviour => (i % 3 === 0 ? 'uncommitted' : 'commit'))]).slice(0, n);
  const issues: IssuePlan[] = builders.map((builder, i) => ({
    index: i + 1,
    title: `Chaos ${i + 1}: ${builder}`,
    builder,
    judge: random.next() < 0.2 ? 'changes-once' : 'approve',
    delay: Number(random.between(0.2, 1.5).toFixed(2)),
    crash: null,
    reason: `chaos-reason-${seed}-${i + 1}`,
  }));

  // Crash windows: each at one issue whose builder reaches that step.
  const points = mode === 'github' ? GITHUB_POINTS : LOCAL_POINTS;
  const working = (p: IssuePlan) => p.builder === 'commit' || p.builder === 'uncommitted';
  for (const point of points) {
    const fits = (p: IssuePlan) =>
      p.crash === null &&
      (point === 'leftover-committed' ? p.builder === 'uncommitted' : point === 'builder-committed' ? p.builder === 'commit' : point === 'worktree-remove' ? working(p) || p.builder === 'no-change' : working(p));
    const candidates = issues.filter(fits);
    if (candidates.length === 0) continue;
    const chosen = random.pick(candidates);
    chosen.crash = point;
    if (point === 'doctor-committed') chosen.judge = 'changes-once';
  }

  const kills: Kill[] = [];
  for (let at = 2_000 + random.int(0, options.killGapMs); at < options.chaosMs; at += random.int(options.killGapMs / 2, (options.killGapMs * 3) / 2)) {
    const drawn = random.weighted<Exclude<KillTarget, 'host'>>({ shepherd: 30, agent: 25, daemon: 15, iteration: 15, role: 15 });
    // The same draws in both modes: a seed's schedule differs only in what a shepherd kill hits.
    const target = drawn === 'shepherd' && shepherds === 'host' ? 'host' : drawn;
    kills.push({ at, target, pick: random.next(), restartAfter: random.int(200, 2_000) });
  }

  const humanKinds: HumanKind[] = ['unready', 'close', 'block', 'abort', 'unclaim', 'close'];
  const humans: HumanAction[] = humanKinds.map((kind, i) => ({
    at: kind === 'unready' ? 500 : Math.round((options.chaosMs * (i + random.next())) / (humanKinds.length + 1)),
    kind,
    pick: random.next(),
    requeueAfter: random.int(1_000, 4_000),
  }));
  humans.sort((a, b) => a.at - b.at);

  const faults: Fault[] = [];
  if (mode === 'github') {
    // Every kind once (in the seed's order), then by weight.
    const first = random.shuffle<FaultKind>(['5xx', '429', 'ambiguous-5xx', 'slow', 'drop', 'malformed']);
    for (let at = 1_000 + random.int(0, 1_500); at < options.chaosMs; at += random.int(1_200, 3_000)) {
      const kind = first.shift() ?? random.weighted<FaultKind>({ '5xx': 30, '429': 10, 'ambiguous-5xx': 15, slow: 20, drop: 10, malformed: 15 });
      const amount = kind === '5xx' ? random.int(1, 3) : kind === '429' ? random.int(1, 2) : kind === 'slow' ? random.int(500, 4_000) : kind === 'drop' ? random.int(500, 3_000) : 1;
      faults.push({ at, kind, amount });
    }
  }
  return { seed, mode, shepherds, issues, kills, humans, faults, chaosMs: options.chaosMs };
}
