// A real redis-server for one test: a free port on 127.0.0.1, no persistence, its own directory;
// started and stopped by the test (and restarted on the same port to simulate an outage). A test
// that needs Redis fails when redis-server is missing (the test command installs it).
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const REDIS_SERVER = ['/usr/bin/redis-server', '/usr/local/bin/redis-server'].find((p) => fs.existsSync(p)) ?? 'redis-server';

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Sends PING over a raw socket; true on +PONG. */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.on('error', () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (d) => done(d.toString().startsWith('+PONG')));
  });
}

export class RedisServer {
  private child: ChildProcess | null = null;
  private output = '';

  private constructor(
    readonly port: number,
    private readonly dir: string,
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  static async start(): Promise<RedisServer> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'loom-redis-'));
    const redis = new RedisServer(await freePort(), dir);
    await redis.up();
    return redis;
  }

  /** Starts the server (again) on its port and waits for PING. */
  async up(): Promise<void> {
    const child = spawn(REDIS_SERVER, ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', this.dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout?.on('data', (c: Buffer) => (this.output += c.toString()));
    child.stderr?.on('data', (c: Buffer) => (this.output += c.toString()));
    const failed = new Promise<Error>((resolve) => {
      child.on('error', (e) => resolve(e));
      child.on('exit', (code) => resolve(new Error(`redis-server exited with ${code}: ${this.output.slice(-500)}`)));
    });
    this.child = child;
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (await ping(this.port)) return;
      const early = await Promise.race([failed, new Promise<null>((r) => setTimeout(() => r(null), 50))]);
      if (early !== null) throw new Error(`redis-server (${REDIS_SERVER}) did not start: ${early.message}`);
      if (Date.now() > deadline) throw new Error(`redis-server did not answer PING on port ${this.port} within 10 s: ${this.output.slice(-500)}`);
    }
  }

  /** Stops the server (all data goes: it keeps none) and waits for it to exit. */
  /** Freezes the server (SIGSTOP): its clients get no answer, its data stays — a network cut. */
  freeze(): void {
    this.child?.kill('SIGSTOP');
  }

  /** Lets a frozen server run again (SIGCONT). */
  thaw(): void {
    this.child?.kill('SIGCONT');
  }

  async down(): Promise<void> {
    const child = this.child;
    this.child = null;
    if (child === null || child.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGKILL');
    await exited;
  }

  async stop(): Promise<void> {
    await this.down();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
