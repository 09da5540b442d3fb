import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MisuseError } from '../protocol/errors.ts';
import { MemoryLogger, createLogger, silentLogger } from '../services/log.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tracecity-log-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function lines(path: string): Promise<Record<string, unknown>[]> {
  const text = await readFile(path, 'utf8');
  return text
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('createLogger (pino)', () => {
  it('writes one JSON line per entry with msg and fields at top level', async () => {
    const path = join(dir, 'nested', 'a.log');
    const log = createLogger({ level: 'info', name: 'host', destination: path });
    log.info('started', { port: 1883, actors: ['a', 'b'] });
    log.warn('no fields');
    log.debug('below the level');
    const [first, second, ...rest] = await lines(path);
    expect(rest).toEqual([]);
    expect(first).toMatchObject({ level: 'info', name: 'host', msg: 'started', port: 1883, actors: ['a', 'b'] });
    expect(typeof first?.time).toBe('string');
    expect(second).toMatchObject({ level: 'warn', msg: 'no fields' });
  });

  it('adds child bindings to every line, nested children merge', async () => {
    const path = join(dir, 'child.log');
    const log = createLogger({ level: 'debug', name: 'host', destination: path });
    const phone = log.child({ actor: 'phone-1', role: 'phone' });
    phone.debug('scan', { frames: 3 });
    phone.child({ session: 7 }).error('lost');
    log.info('root');
    const [a, b, c] = await lines(path);
    expect(a).toMatchObject({ level: 'debug', actor: 'phone-1', role: 'phone', msg: 'scan', frames: 3 });
    expect(b).toMatchObject({ level: 'error', actor: 'phone-1', session: 7, msg: 'lost' });
    expect(c).not.toHaveProperty('actor');
  });

  it('keeps pino keys intact when fields reuse their names, serialises errors', async () => {
    const path = join(dir, 'reserved.log');
    const log = createLogger({ level: 'info', name: 'host', destination: path });
    log.error('failed', { msg: 'field msg', level: 'x', time: 5, error: new Error('boom') });
    const text = await readFile(path, 'utf8');
    expect(text.match(/"msg":/g)).toHaveLength(1); // no duplicate JSON keys
    const [line] = await lines(path);
    expect(line).toMatchObject({ level: 'error', msg: 'failed', 'field.msg': 'field msg', 'field.level': 'x', 'field.time': 5 });
    expect(line?.error).toMatchObject({ type: 'Error', message: 'boom' });
  });

  it('writes nothing at level silent', async () => {
    const path = join(dir, 'silent.log');
    const log = createLogger({ level: 'silent', name: 'host', destination: path });
    log.error('nope');
    expect(await readFile(path, 'utf8')).toBe('');
  });

  it('pretty-prints one readable line per entry', async () => {
    const path = join(dir, 'pretty.log');
    const log = createLogger({ level: 'info', name: 'host', destination: path, pretty: true });
    log.child({ actor: 'b1' }).info('advertising', { interval: 250 });
    const text = await readFile(path, 'utf8');
    expect(text).toMatch(/^\d\d:\d\d:\d\d\.\d{3} INFO {2}host: advertising actor=b1 interval=250\n$/);
  });

  it('writes to stderr by default, leaving stdout to program output', async () => {
    const module = new URL('../services/log.ts', import.meta.url).href;
    const script = `const { createLogger } = await import(${JSON.stringify(module)});
      createLogger({ level: 'info', name: 'n' }).info('hi', { a: 1 });
      process.stdout.write(JSON.stringify({ result: 1 }));`;
    const { stdout, stderr } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script]);
    expect(JSON.parse(stdout)).toEqual({ result: 1 });
    expect(JSON.parse(stderr)).toMatchObject({ level: 'info', name: 'n', msg: 'hi', a: 1 });
  });

  it('rejects bad options', () => {
    expect(() => createLogger({ level: 'loud' as 'info', name: 'x' })).toThrow(MisuseError);
    expect(() => createLogger({ level: 'info', name: '' })).toThrow(MisuseError);
  });
});

describe('MemoryLogger', () => {
  it('records level, msg, fields and merged bindings in order', () => {
    const log = new MemoryLogger();
    log.info('a', { x: 1 });
    const child = log.child({ actor: 'p1' }).child({ run: 2 });
    child.warn('b');
    child.error('c', { y: 'z' });
    log.debug('d');
    expect(log.entries).toEqual([
      { level: 'info', msg: 'a', fields: { x: 1 }, bindings: {} },
      { level: 'warn', msg: 'b', fields: {}, bindings: { actor: 'p1', run: 2 } },
      { level: 'error', msg: 'c', fields: { y: 'z' }, bindings: { actor: 'p1', run: 2 } },
      { level: 'debug', msg: 'd', fields: {}, bindings: {} },
    ]);
    expect(log.find({ level: 'error' }).map((e) => e.msg)).toEqual(['c']);
    expect(log.find({ msg: 'b' })).toHaveLength(1);
    log.clear();
    expect(log.entries).toEqual([]);
  });

  it('silentLogger accepts everything and returns itself as child', () => {
    silentLogger.info('x', { a: 1 });
    expect(silentLogger.child({ a: 1 })).toBe(silentLogger);
  });
});
