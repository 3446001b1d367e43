// `loom service`: the unit the real binary would install is checked on every machine; where the
// machine has a user systemd, install → running (restarted after a kill -9) → uninstall runs for
// real; where it has none (a container), install must say so, suggest `--detach` and write
// nothing. One of the two always runs, and the other is reported as skipped, never passed.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isProcessAlive } from '../../src/process/process-identity.js';
import { serviceName } from '../../src/setup/service-unit.js';
import type { TestRepo } from '../helpers/loom-repo.js';
import { fingerprint, loom, makeRepo, until } from '../helpers/loom-repo.js';

const userSystemd = process.platform === 'linux' && spawnSync('systemctl', ['--user', 'show-environment'], { encoding: 'utf8' }).status === 0;
const systemdAnalyze = process.platform === 'linux' && spawnSync('systemd-analyze', ['--version']).status === 0;
const CLI_ENTRY = path.resolve('dist/cli/main.js');

let repo: TestRepo | undefined;
let home: string;
beforeEach(() => {
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'loom-service-home-'));
});
afterEach(() => {
  repo?.cleanup();
  repo = undefined;
  fs.rmSync(home, { recursive: true, force: true });
});

describe('loom service', () => {
  it('install --print shows the unit for this repository: paths, restart policy, allowlisted environment, no secret; it writes nothing', () => {
    repo = makeRepo({ shutdownGrace: '2m' });
    const before = fingerprint(repo.paths.dir);
    const secrets = { ANTHROPIC_API_KEY: 'sk-ant-print-secret', GITHUB_TOKEN: 'ghp_print_secret', CLAUDE_CODE_OAUTH_TOKEN: 'oauth-print-secret' };
    const r = loom(repo.root, ['service', 'install', '--print'], { HOME: home, LANG: 'C.UTF-8', ...secrets });
    expect(r.code, r.stderr).toBe(0);
    const unit = r.stdout;
    const name = serviceName(repo.root);
    if (process.platform === 'linux') {
      const log = repo.paths.daemonLog;
      expect(unit).toContain(`\nWorkingDirectory=${repo.root}\n`);
      expect(unit).toContain(`\nExecStart="${process.execPath}" "${CLI_ENTRY}" "start" "--log-file" "${log}"\n`);
      expect(unit).toContain(`\nExecStop="${process.execPath}" "${CLI_ENTRY}" "stop"\n`);
      expect(unit).toContain(`\nStandardOutput=append:${log}\n`);
      expect(unit).toMatch(/\nRestart=on-failure\n[\s\S]*\nRestartPreventExitStatus=2\n/);
      expect(unit).toContain('\nKillMode=process\n');
      expect(unit).toContain('\nTimeoutStopSec=180\n');
      expect(unit).toContain(`\nEnvironmentFile=-${home}/.config/loom/loom.env\n`);
      expect(unit).toContain(`\nEnvironment="PATH=${process.env.PATH ?? ''}"\n`);
      expect(unit).toContain('\nEnvironment="LANG=C.UTF-8"\n');
      expect(unit).toContain(`Description=Loom daemon for ${repo.root}`);
    } else {
      expect(unit).toContain(`<string>dev.loom.${name}</string>`);
    }
    for (const [key, value] of Object.entries(secrets)) {
      expect(unit).not.toContain(value);
      expect(unit).not.toContain(key);
    }
    expect(fs.readdirSync(home)).toEqual([]);
    expect(fingerprint(repo.paths.dir)).toEqual(before);
  });

  it.runIf(systemdAnalyze)("systemd's own parser accepts the unit: `systemd-analyze verify` reports no bad setting", () => {
    repo = makeRepo({});
    const r = loom(repo.root, ['service', 'install', '--print'], { HOME: home });
    expect(r.code, r.stderr).toBe(0);
    const file = path.join(home, `${serviceName(repo.root)}.service`);
    fs.writeFileSync(file, r.stdout);
    // Bad settings are reported as "…, ignoring" with exit 0, so the report itself is checked.
    const verify = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8' });
    expect(verify.status, verify.stderr).toBe(0);
    // (Newer systemd versions note that KillMode=process is deliberate-only: it is, see service-unit.ts.)
    expect(verify.stderr.split('\n').filter((l) => l.trim() !== '' && !l.includes('KillMode=process'))).toEqual([]);
    // The check bites: a misspelt setting is reported.
    fs.writeFileSync(file, r.stdout.replace('Restart=on-failure', 'Restart=on-failures'));
    expect(spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8' }).stderr).toMatch(/Failed to parse service restart specifier, ignoring: on-failures/);
  });

  it.runIf(process.platform === 'linux')("the unit's own command lines run the daemon as systemd would: minimal environment, log appended, ExecStop then SIGTERM stop it cleanly", async () => {
    repo = makeRepo({ pollInterval: '1s', shutdownGrace: '5s' });
    const r = loom(repo.root, ['service', 'install', '--print'], { HOME: home });
    expect(r.code, r.stderr).toBe(0);
    const unit = r.stdout;
    const setting = (key: string) => unit.split('\n').filter((l) => l.startsWith(`${key}=`)).map((l) => l.slice(key.length + 1));
    const words = (line: string) => [...line.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]!.replace(/\\(.)/g, '$1').replace(/\$\$/g, '$').replace(/%%/g, '%'));
    // systemd's environment for a user service: HOME and the unit's Environment= lines, nothing else.
    const env: NodeJS.ProcessEnv = { HOME: home, ...Object.fromEntries(setting('Environment').flatMap(words).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)])) };
    const [cwd] = setting('WorkingDirectory');
    const output = setting('StandardOutput')[0]!.replace(/^append:/, '');
    const [command, ...args] = words(setting('ExecStart')[0]!);
    fs.mkdirSync(path.dirname(output), { recursive: true });
    const fd = fs.openSync(output, 'a');
    const child = spawn(command!, args, { cwd: cwd!, env, stdio: ['ignore', fd, fd], detached: true });
    fs.closeSync(fd);
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      await until(() => JSON.parse(loom(repo!.root, ['status', '--json']).stdout).daemon.status === 'running', 30_000, 'the daemon runs');
      expect(JSON.parse(loom(repo.root, ['status', '--json']).stdout).daemon).toMatchObject({ pid: child.pid, log_file: output });
      await until(() => /Iteration 1:/.test(fs.readFileSync(output, 'utf8')), 30_000, 'the log fills');
      const [stopCommand, ...stopArgs] = words(setting('ExecStop')[0]!);
      expect(spawnSync(stopCommand!, stopArgs, { cwd: cwd!, env }).status).toBe(0);
      child.kill('SIGTERM');
      expect(await Promise.race([exited, new Promise((resolve) => setTimeout(() => resolve('still running'), 30_000).unref())])).toBe(0);
      expect(fs.readFileSync(output, 'utf8')).toMatch(/Loom daemon stopped/);
    } finally {
      if (child.pid !== undefined && isProcessAlive(child.pid)) process.kill(-child.pid, 'SIGKILL');
    }
  });

  it('install with an invalid config exits 2 with one line and writes nothing', () => {
    repo = makeRepo({});
    fs.writeFileSync(repo.paths.config, JSON.stringify({ shutdownGrace: 'soon' }));
    const before = fingerprint(repo.paths.dir);
    const r = loom(repo.root, ['service', 'install'], { HOME: home });
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^loom: .*shutdownGrace/);
    expect(fs.readdirSync(home)).toEqual([]);
    expect(fingerprint(repo.paths.dir)).toEqual(before);
  });

  it.skipIf(userSystemd)('without a user systemd (a container): install says so, suggests --detach and writes nothing; status and uninstall say the same', () => {
    repo = makeRepo({});
    const before = fingerprint(repo.paths.dir);
    const install = loom(repo.root, ['service', 'install'], { HOME: home });
    expect(install.code).toBe(2);
    expect(install.stdout).toBe('');
    expect(install.stderr.trim().split('\n')).toHaveLength(1);
    expect(install.stderr).toMatch(/^loom: no user systemd here \(systemctl --user: .+\) — .*nothing was written\. Run `loom start --detach`/);
    expect(fs.readdirSync(home)).toEqual([]);
    expect(fingerprint(repo.paths.dir)).toEqual(before);
    expect(JSON.parse(loom(repo.root, ['status', '--json']).stdout).daemon.status).toBe('never-started');

    const status = loom(repo.root, ['service', 'status', '--json'], { HOME: home });
    expect(status.code, status.stderr).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ manager: 'systemd', available: false, installed: false, name: serviceName(repo.root), daemon: { running: false } });
    expect(loom(repo.root, ['service', 'status'], { HOME: home }).stdout).toMatch(/Manager: not reachable \(.+\); `loom start --detach` runs the daemon in the background instead/);
    const uninstall = loom(repo.root, ['service', 'uninstall'], { HOME: home });
    expect(uninstall.code).toBe(0);
    expect(uninstall.stdout).toMatch(/No Loom service is installed for this repository/);
  });

  it.runIf(userSystemd)('with a user systemd: install starts the daemon, a kill -9 is followed by a restart, uninstall stops it and removes the unit', async () => {
    repo = makeRepo({ pollInterval: '1s', shutdownGrace: '5s' });
    const unit = `${serviceName(repo.root)}.service`;
    const file = path.join(os.homedir(), '.config', 'systemd', 'user', unit);
    const mainPid = () => Number(spawnSync('systemctl', ['--user', 'show', '-p', 'MainPID', '--value', unit], { encoding: 'utf8' }).stdout.trim());
    try {
      const install = loom(repo.root, ['service', 'install']);
      expect(install.code, install.stderr).toBe(0);
      expect(install.stdout).toMatch(/Installed .*: the daemon runs \(pid (\d+)\)/);
      expect(fs.existsSync(file)).toBe(true);
      const first = mainPid();
      expect(JSON.parse(loom(repo.root, ['status', '--json']).stdout).daemon).toMatchObject({ status: 'running', pid: first, log_file: repo.paths.daemonLog });
      expect(JSON.parse(loom(repo.root, ['service', 'status', '--json']).stdout)).toMatchObject({ installed: true, up_to_date: true, active: 'active', main_pid: first });

      process.kill(first, 'SIGKILL');
      const second = await until(() => {
        const pid = mainPid();
        return pid > 0 && pid !== first && JSON.parse(loom(repo!.root, ['status', '--json']).stdout).daemon.pid === pid ? pid : 0;
      }, 60_000, 'systemd restarted the daemon');

      const uninstall = loom(repo.root, ['service', 'uninstall']);
      expect(uninstall.code, uninstall.stderr).toBe(0);
      expect(fs.existsSync(file)).toBe(false);
      expect(isProcessAlive(second)).toBe(false);
      expect(JSON.parse(loom(repo.root, ['status', '--json']).stdout).daemon.status).toBe('stopped');
    } finally {
      spawnSync('systemctl', ['--user', 'disable', '--now', unit]);
      fs.rmSync(file, { force: true });
      spawnSync('systemctl', ['--user', 'daemon-reload']);
    }
  });
});
