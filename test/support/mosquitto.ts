/**
 * Start a private mosquitto for a test or bench: its own config in a temp dir,
 * a free port on 127.0.0.1, no system service involved. Used by
 * test/bus/mosquitto.test.ts, multi-process tests and bench/bus.ts.
 *
 * `mosquittoBinary()` finds the executable (PATH, then /usr/sbin and
 * /usr/local/sbin, where Debian puts it); callers skip when it is undefined
 * (`mosquittoSkipReason` says why).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

export interface MosquittoOptions {
  /** Port to listen on; default: a free one. */
  readonly port?: number;
  /**
   * mosquitto drops QoS 1/2 messages beyond max_queued_messages per client
   * (default 1000) without telling the sender. Tests and benches push bursts
   * of 20 000 messages at one subscriber, so we set it deliberately high;
   * 0 would mean unbounded, which we never want, even here.
   */
  readonly maxQueuedMessages?: number;
  /** Send one copy per matching subscription (mosquitto's default in 2.0 is false). */
  readonly allowDuplicateMessages?: boolean;
  /** Extra mosquitto.conf lines. */
  readonly extraConfig?: readonly string[];
  /** Startup budget (default 5000 ms). */
  readonly startTimeoutMs?: number;
}

export interface RunningMosquitto {
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  /** Everything mosquitto logged so far (stderr). */
  log(): string;
  /** SIGTERM (SIGKILL after 3 s), then delete the temp dir. Idempotent. */
  stop(): Promise<void>;
}

const SEARCH_EXTRA = ['/usr/sbin', '/usr/local/sbin'];

/** Path of the mosquitto executable, or undefined. `MOSQUITTO_BIN` overrides the search (a bad path: skip). */
export function mosquittoBinary(): string | undefined {
  const override = process.env['MOSQUITTO_BIN'];
  if (override !== undefined && override !== '') return isExecutable(override) ? override : undefined;
  const dirs = [...(process.env['PATH'] ?? '').split(delimiter).filter((d) => d !== ''), ...SEARCH_EXTRA];
  return dirs.map((dir) => join(dir, 'mosquitto')).find(isExecutable);
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Why mosquitto tests are skipped, or undefined when the binary exists. */
export const mosquittoSkipReason: string | undefined =
  mosquittoBinary() === undefined
    ? `mosquitto not found (${process.env['MOSQUITTO_BIN'] ? `MOSQUITTO_BIN=${process.env['MOSQUITTO_BIN']}` : 'PATH, /usr/sbin, /usr/local/sbin'}): apt-get install -y mosquitto; CI installs it`
    : undefined;

/** A port that was free a moment ago (listen(0), read, close). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (typeof address !== 'object' || address === null) throw new Error('no port from listen(0)');
  return address.port;
}

/** Resolves once something accepts TCP connections on 127.0.0.1:port. */
export async function waitForPort(port: number, timeoutMs: number, alive: () => boolean = () => true): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (!alive()) throw new Error('process exited before listening');
    if (Date.now() > deadline) throw new Error(`nothing listening on port ${port} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

export async function startMosquitto(options: MosquittoOptions = {}): Promise<RunningMosquitto> {
  const binary = mosquittoBinary();
  if (binary === undefined) throw new Error(mosquittoSkipReason);
  // freePort() can race with another process; retry with a new port unless one was asked for
  for (let attempt = 1; ; attempt++) {
    try {
      return await launch(binary, options.port ?? (await freePort()), options);
    } catch (error) {
      if (options.port !== undefined || attempt >= 3) throw error;
    }
  }
}

async function launch(binary: string, port: number, options: MosquittoOptions): Promise<RunningMosquitto> {
  const dir = await mkdtemp(join(tmpdir(), 'tc-mosquitto-'));
  const conf = join(dir, 'mosquitto.conf');
  const lines = [
    `listener ${port} 127.0.0.1`,
    'allow_anonymous true',
    'persistence false',
    '# mosquitto silently drops QoS 1 messages queued beyond max_queued_messages (default 1000);',
    '# tests and benches send bursts of 20 000 to one subscriber, so the bound is set deliberately.',
    `max_queued_messages ${options.maxQueuedMessages ?? 100_000}`,
    `allow_duplicate_messages ${options.allowDuplicateMessages === true ? 'true' : 'false'}`,
    'set_tcp_nodelay true', // small MQTT packets: Nagle + delayed ACK would add ~40 ms per round trip
    'log_dest stderr',
    'log_type error',
    'log_type warning',
    ...(options.extraConfig ?? []),
  ];
  await writeFile(conf, `${lines.join('\n')}\n`);
  const child: ChildProcess = spawn(binary, ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-20_000);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let running = true;
  void exited.then(() => (running = false));
  const killOnExit = (): void => void child.kill('SIGKILL');
  process.once('exit', killOnExit);

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      process.off('exit', killOnExit);
      if (running) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
        await exited;
        clearTimeout(timer);
      }
      await rm(dir, { recursive: true, force: true });
    })();
    return stopping;
  };
  try {
    await waitForPort(port, options.startTimeoutMs ?? 5000, () => running);
  } catch (error) {
    await stop();
    throw new Error(`mosquitto did not start on port ${port}: ${(error as Error).message}\n${stderr}`, { cause: error });
  }
  return { url: `mqtt://127.0.0.1:${port}`, port, pid: child.pid ?? -1, log: () => stderr, stop };
}
