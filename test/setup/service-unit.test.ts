// The user service's unit text: where it runs, how it restarts and stops, which environment it
// gets — and that no secret is ever written into it.
import { describe, expect, it } from 'vitest';
import type { ServiceInputs } from '../../src/setup/service-unit.js';
import { SERVICE_ENV_ALLOWLIST, serviceName, serviceSpec, unitText } from '../../src/setup/service-unit.js';

const inputs = (over: Partial<ServiceInputs> = {}): ServiceInputs => ({
  platform: 'linux',
  root: '/home/ada/src/widgets',
  home: '/home/ada',
  env: {
    PATH: '/home/ada/.local/bin:/usr/bin:/bin',
    LANG: 'en_GB.UTF-8',
    ANTHROPIC_API_KEY: 'sk-ant-very-secret',
    GITHUB_TOKEN: 'ghp_very_secret',
    CLAUDE_CODE_OAUTH_TOKEN: 'oauth-very-secret',
    AWS_SECRET_ACCESS_KEY: 'aws-very-secret',
    SOME_PASSWORD: 'hunter2',
  },
  loom: ['/usr/bin/node', '/opt/loom/dist/cli/main.js'],
  logFile: '/home/ada/src/widgets/.loom/logs/daemon.log',
  force: false,
  shutdownGraceMs: 5 * 60_000,
  ...over,
});

/** `Key=value` settings of a systemd unit (the last one of each key, or all of them). */
function settings(text: string, key: string): string[] {
  return text
    .split('\n')
    .filter((l) => l.startsWith(`${key}=`))
    .map((l) => l.slice(key.length + 1));
}

describe('systemd user unit', () => {
  const spec = serviceSpec(inputs());
  const text = unitText(spec);

  it('lives in ~/.config/systemd/user under a name of the repository and its path', () => {
    expect(spec.name).toMatch(/^loom-widgets-[0-9a-f]{8}$/);
    expect(spec.file).toBe(`/home/ada/.config/systemd/user/${spec.name}.service`);
    // Two clones with one name get two services.
    expect(serviceName('/home/ada/src/widgets')).not.toBe(serviceName('/home/ada/work/widgets'));
    expect(serviceName('/srv/My Repo!')).toMatch(/^loom-my-repo-[0-9a-f]{8}$/);
  });

  it('runs `loom start` in the repository with its output appended to the daemon log', () => {
    expect(settings(text, 'WorkingDirectory')).toEqual(['/home/ada/src/widgets']);
    expect(settings(text, 'ExecStart')).toEqual(['"/usr/bin/node" "/opt/loom/dist/cli/main.js" "start" "--log-file" "/home/ada/src/widgets/.loom/logs/daemon.log"']);
    expect(settings(text, 'StandardOutput')).toEqual(['append:/home/ada/src/widgets/.loom/logs/daemon.log']);
    expect(settings(text, 'StandardError')).toEqual(['append:/home/ada/src/widgets/.loom/logs/daemon.log']);
    expect(settings(text, 'Type')).toEqual(['simple']);
    expect(settings(text, 'WantedBy')).toEqual(['default.target']);
    expect(settings(unitText(serviceSpec(inputs({ force: true }))), 'ExecStart')[0]).toContain('"start" "--force" "--log-file"');
  });

  it('stops like `loom stop` within shutdownGrace, restarts after a failure but not after exit 2, and leaves shepherds to be adopted', () => {
    expect(settings(text, 'ExecStop')).toEqual(['"/usr/bin/node" "/opt/loom/dist/cli/main.js" "stop"']);
    expect(settings(text, 'TimeoutStopSec')).toEqual(['360']);
    expect(settings(unitText(serviceSpec(inputs({ shutdownGraceMs: 30_000 }))), 'TimeoutStopSec')).toEqual(['90']);
    expect(settings(text, 'Restart')).toEqual(['on-failure']);
    expect(settings(text, 'RestartSec')).toEqual(['10']);
    expect(settings(text, 'RestartPreventExitStatus')).toEqual(['2']);
    expect(settings(text, 'KillMode')).toEqual(['process']);
  });

  it('copies only the allowlisted environment, and points at an optional env file for credentials', () => {
    expect(settings(text, 'Environment')).toEqual(['"PATH=/home/ada/.local/bin:/usr/bin:/bin"', '"LANG=en_GB.UTF-8"']);
    expect(settings(text, 'EnvironmentFile')).toEqual(['-/home/ada/.config/loom/loom.env']);
    for (const secret of ['very-secret', 'very_secret', 'hunter2', 'ANTHROPIC_API_KEY', 'GITHUB_TOKEN', 'OAUTH', 'AWS_', 'PASSWORD']) expect(text).not.toContain(secret);
    expect(SERVICE_ENV_ALLOWLIST.filter((k) => /TOKEN|KEY|SECRET|PASSWORD|AUTH/i.test(k))).toEqual([]);
  });

  it('escapes what systemd would expand or split: %, $, quotes, backslashes, spaces', () => {
    const odd = unitText(serviceSpec(inputs({ root: '/srv/100% "odd" $dir', logFile: '/srv/100% "odd" $dir/.loom/logs/daemon.log', env: { PATH: '/a b:/c\\d' } })));
    expect(settings(odd, 'WorkingDirectory')).toEqual(['/srv/100%% "odd" $dir']);
    expect(settings(odd, 'ExecStart')[0]).toContain('"/srv/100%% \\"odd\\" $$dir/.loom/logs/daemon.log"');
    expect(settings(odd, 'Environment')).toEqual(['"PATH=/a b:/c\\\\d"']);
    expect(() => serviceSpec(inputs({ root: '/srv/line\nbreak' }))).toThrow(/line break/);
  });
});

describe('launchd agent', () => {
  const spec = serviceSpec(inputs({ platform: 'darwin', root: '/Users/ada/R&D <x>', home: '/Users/ada', logFile: '/Users/ada/R&D <x>/.loom/logs/daemon.log' }));
  const text = unitText(spec);

  it('lives in ~/Library/LaunchAgents and runs `loom start` through a shell that reads the optional env file', () => {
    expect(spec.file).toBe(`/Users/ada/Library/LaunchAgents/dev.loom.${spec.name}.plist`);
    expect(text).toContain(`<key>Label</key><string>dev.loom.${spec.name}</string>`);
    const argv = [...text.slice(text.indexOf('<key>ProgramArguments</key>'), text.indexOf('</array>')).matchAll(/<string>(.*?)<\/string>/g)].map((m) => m[1]);
    expect(argv).toEqual([
      '/bin/sh',
      '-c',
      'if [ -r &quot;$0&quot; ]; then set -a; . &quot;$0&quot;; set +a; fi; exec &quot;$@&quot;',
      '/Users/ada/.config/loom/loom.env',
      '/usr/bin/node',
      '/opt/loom/dist/cli/main.js',
      'start',
      '--log-file',
      '/Users/ada/R&amp;D &lt;x&gt;/.loom/logs/daemon.log',
    ]);
    expect(text).toContain('<key>WorkingDirectory</key><string>/Users/ada/R&amp;D &lt;x&gt;</string>');
  });

  it('restarts after a failure only, leaves shepherds running, waits for the graceful stop, logs to the daemon log', () => {
    expect(text).toMatch(/<key>KeepAlive<\/key>\s*<dict>\s*<key>SuccessfulExit<\/key><false\/>\s*<\/dict>/);
    expect(text).toContain('<key>AbandonProcessGroup</key><true/>');
    expect(text).toContain('<key>ExitTimeOut</key><integer>360</integer>');
    expect(text).toContain('<key>RunAtLoad</key><true/>');
    expect(text).toContain('<key>StandardOutPath</key><string>/Users/ada/R&amp;D &lt;x&gt;/.loom/logs/daemon.log</string>');
    expect(text).toContain('<key>StandardErrorPath</key><string>/Users/ada/R&amp;D &lt;x&gt;/.loom/logs/daemon.log</string>');
    expect(text).toMatch(/<key>EnvironmentVariables<\/key>\s*<dict>\s*<key>PATH<\/key><string>\/home\/ada\/\.local\/bin:\/usr\/bin:\/bin<\/string>\s*<key>LANG<\/key><string>en_GB\.UTF-8<\/string>\s*<\/dict>/);
    for (const secret of ['very-secret', 'very_secret', 'hunter2', 'ANTHROPIC_API_KEY', 'GITHUB_TOKEN']) expect(text).not.toContain(secret);
    // Well-formed: every element opened is closed, in order.
    const stack: string[] = [];
    let closed = 0;
    for (const m of text.replace(/<\?.*?\?>|<!.*?>/gs, '').matchAll(/<(\/?)([a-z]+)[^>]*?(\/?)>/g)) {
      if (m[3] === '/') continue;
      if (m[1] === '') stack.push(m[2]!);
      else {
        expect(stack.pop()).toBe(m[2]);
        closed += 1;
      }
    }
    expect(stack).toEqual([]);
    expect(closed).toBeGreaterThan(30);
  });
});
