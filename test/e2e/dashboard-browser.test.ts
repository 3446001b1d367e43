// The dashboard in a real browser (Debian's chromium driven by playwright-core) during a real
// daemon run on the script agents: shepherds appear and issues move through the lanes without
// reloading, an issue page shows its timeline and log, an abort from the page stops a shepherd,
// and the daemon is stopped from the page. Screenshots are kept under test-artifacts/dashboard/.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { chromium } from 'playwright-core';
import { afterEach, describe, expect, it } from 'vitest';
import { Label } from '../../src/core/labels.js';
import type { DaemonHandle, TestRepo } from '../helpers/loom-repo.js';
import { loom, makeRepo, processesIn, startDaemon, until } from '../helpers/loom-repo.js';
import { parsePrometheus } from '../helpers/prometheus.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = path.join(process.cwd(), 'test-artifacts', 'dashboard');

let repo: TestRepo | undefined;
let daemon: DaemonHandle | undefined;
let restarted: DaemonHandle | undefined;
let context: BrowserContext | undefined;
const dirs: string[] = [];
afterEach(async () => {
  await context?.close();
  daemon?.child.kill('SIGKILL');
  restarted?.child.kill('SIGKILL');
  repo?.cleanup();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  context = daemon = restarted = repo = undefined;
});

const fence = '```';

/** Every lane that shows a card for issue `n` (its pull request's card counts for it too). */
function lanesOf(page: Page, n: number): Promise<string[]> {
  return page.evaluate(`[...document.querySelectorAll('[data-lane] .card[data-issue="${n}"]')].map((c) => c.closest('[data-lane]').dataset.lane)`);
}

describe('dashboard in a browser', () => {
  it('follows a daemon run live, shows an issue page, aborts a shepherd and stops the daemon from the page', async () => {
    // A browser test never passes without a browser: the test command installs Debian's chromium.
    expect(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: install Debian's chromium (npm test does it: apt-get install chromium)`).toBe(true);
    repo = makeRepo({
      runtime: 'script',
      maxShepherds: 1,
      pollInterval: '1s',
      heartbeatInterval: '0.3s',
      shutdownGrace: '1s',
      roles: { architect: { enabled: false }, hermit: { enabled: false }, guide: { enabled: false }, curator: { enabled: false } },
    });
    const tracker = repo.tracker();
    const slow = await tracker.createIssue({ title: 'Slow and stuck', body: `${fence}loom-script builder\nsay thinking very hard\nhang\n${fence}`, labels: [Label.issue] });

    daemon = startDaemon(repo.root, ['start', '--force', '--dashboard']);
    const url = await until(() => /Dashboard: (http:\/\/127\.0\.0\.1:\d+\/)/.exec(daemon!.output())?.[1], 30_000, 'the dashboard address');

    const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'loom-chromium-'));
    dirs.push(profile);
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-background-networking', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync'],
      viewport: { width: 1440, height: 1000 },
    });
    const problems: string[] = [];
    const board = await context.newPage();
    board.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    // While the test has the dashboard down on purpose (its restart and its end, below), a
    // reconnect attempt refused is what the browser is expected to log; nothing else is.
    let restarting = false;
    board.on('console', (m) => m.type() === 'error' && !(restarting && /ERR_CONNECTION_REFUSED/.test(m.text())) && problems.push(`console: ${m.text()}`));
    await board.goto(url);
    await board.evaluate('window.loomTestMarker = "never reloaded"');
    await board.locator('#live', { hasText: 'live' }).waitFor({ timeout: 10_000 });

    // The stuck issue's shepherd appears, with its phase and runtime.
    const row = board.locator(`[data-shepherd="${slow.number}"]`);
    await row.waitFor({ timeout: 30_000 });
    await expect.poll(() => row.locator('[data-field="phase"]').textContent(), { timeout: 20_000 }).toBe('builder');
    expect(await row.textContent()).toContain('script');
    expect(await lanesOf(board, slow.number)).toEqual(['building']);
    // The merge panel says nothing waits; the workers panel stays hidden with the local executor.
    expect(await board.locator('#merging li').first().textContent()).toBe('no merge waiting');
    expect(await board.locator('#workers-panel').isHidden()).toBe(true);

    // A new urgent issue waits in Ready while the only slot is busy.
    const quick = loom(repo.root, ['issue', 'create', 'Add quick.txt', '--body', `${fence}loom-script builder\nsleep 1\nwrite quick.txt <<EOF\nquick\nEOF\ncommit Add quick.txt\n${fence}\n\n${fence}loom-script judge\nsleep 1.5\nsay VERDICT: APPROVE\n${fence}`, '--label', Label.issue, '--label', Label.urgent, '--json']);
    expect(quick.code, quick.stderr).toBe(0);
    const q = (JSON.parse(quick.stdout) as { number: number }).number;
    await expect.poll(() => lanesOf(board, q), { timeout: 10_000 }).toEqual(['ready']);

    // The issue page of the stuck one: its timeline and its live log.
    const issuePage = await context.newPage();
    issuePage.on('pageerror', (e) => problems.push(`issue page error: ${e.message}`));
    await issuePage.goto(`${url}issues/${slow.number}`);
    await issuePage.locator('#timeline li[data-type="agent.started"]').waitFor({ timeout: 20_000 });
    for (const type of ['shepherd.spawned', 'task.started', 'task.phase']) expect(await issuePage.locator(`#timeline li[data-type="${type}"]`).count(), type).toBeGreaterThan(0);
    await expect.poll(() => issuePage.locator('#log').textContent(), { timeout: 20_000 }).toContain('thinking very hard');
    expect(await issuePage.locator('#why-verdict').textContent()).toMatch(new RegExp(`^#${slow.number} is being built by a shepherd`));
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    await issuePage.screenshot({ path: path.join(ARTIFACTS, 'issue.png'), fullPage: true });

    // Lanes of the quick issue, watched from now on.
    const seen: string[][] = [];
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        seen.push(await lanesOf(board, q));
        await new Promise((r) => setTimeout(r, 50));
      }
    })();

    // Abort the stuck shepherd from its page: it stops, and its issue goes back to Ready.
    await issuePage.locator('#issue-actions button[data-action="abort"]').click();
    await issuePage.locator('#notice', { hasText: `loom:abort` }).waitFor({ timeout: 20_000 });
    await issuePage.locator('#timeline li[data-type="task.finished"]', { hasText: 'stopped' }).waitFor({ timeout: 30_000 });
    expect((await tracker.listComments(slow.number)).at(-1)!.body).toMatch(/stopped by `loom:abort`/);

    // The urgent one takes the slot and goes through the lanes to its merge, all on the same page.
    await until(async () => (await tracker.getIssue(q))?.state === 'closed', 60_000, `#${q} merged; daemon:\n${daemon.output()}`);
    await expect.poll(() => lanesOf(board, q), { timeout: 10_000 }).toEqual([]);
    watching = false;
    await watcher;
    const order = seen.flat().filter((l, i, all) => all.indexOf(l) === i);
    expect(order.slice(0, 2)).toEqual(['ready', 'building']);
    expect(order).toContain('review_requested');
    await board.locator('#events li[data-type="pr.merged"]', { hasText: `#${q}` }).waitFor({ timeout: 10_000 });
    await board.screenshot({ path: path.join(ARTIFACTS, 'board.png'), fullPage: true });

    const metrics = parsePrometheus(await (await fetch(`${url}metrics`)).text());
    expect(metrics.value('loom_merges_total')).toBe(1);

    // The dashboard restarts on the same port (a crash, an upgrade): the page reconnects by
    // itself and shows the recent events it is sent again once, not twice.
    const feed = (): Promise<string[]> => board.evaluate(`[...document.querySelectorAll('#events li')].map((li) => li.querySelector('time').getAttribute('datetime') + ' ' + li.textContent)`);
    const first = JSON.parse(fs.readFileSync(repo.paths.dashboard, 'utf8')) as { pid: number };
    restarting = true;
    process.kill(first.pid, 'SIGTERM');
    await board.locator('#live', { hasText: 'reconnecting' }).waitFor({ timeout: 10_000 });
    restarted = startDaemon(repo.root, ['dashboard', '--port', new URL(url).port]);
    await board.locator('#live', { hasText: 'live' }).waitFor({ timeout: 20_000 });
    restarting = false;
    await board.locator('#events li[data-type="pr.merged"]', { hasText: `#${q}` }).waitFor({ timeout: 10_000 });
    const shown = await feed();
    expect(shown.length).toBeGreaterThan(0);
    expect(shown.filter((line, i) => shown.indexOf(line) !== i)).toEqual([]);

    // Stop the daemon from the page (the stuck issue was spawned again meanwhile: it is stopped).
    await board.locator('#stop-daemon').click();
    await board.locator('#notice', { hasText: 'Stop signal sent' }).waitFor({ timeout: 20_000 });
    expect(await daemon.exited(60_000)).toBe(0);
    restarting = true; // down on purpose again: the page may try to reconnect before the checks below
    restarted.child.kill('SIGTERM');
    expect(await restarted.exited(10_000)).toBe(0);
    expect(await board.evaluate('window.loomTestMarker')).toBe('never reloaded');
    expect(problems).toEqual([]);
    expect((await tracker.getIssue(slow.number))?.labels).toEqual([Label.issue]);
    await until(() => processesIn(repo!.root).length === 0, 15_000, 'nothing left running, the dashboard included');
  });
});
