import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MisuseError } from '../../protocol/errors.ts';
import { topicMatches } from '../../protocol/wire/topics.ts';
import { MemoryHub } from '../../services/bus/memory.ts';
import { FilterIndex, matchesSplit, validateFilter } from '../../services/bus/shared.ts';
import { busContract } from '../contract/bus.contract.ts';

busContract('MemoryHub', () => {
  const hub = new MemoryHub({ onError: () => undefined });
  return Promise.resolve({ connect: (clientId: string) => Promise.resolve(hub.connect(clientId)), teardown: () => hub.idle() });
});

const b = (s: string): Uint8Array => new TextEncoder().encode(s);

describe('topic matching (shared by MemoryHub and MqttBus)', () => {
  const level = fc.constantFrom('a', 'b', '', '$x', 'sport');
  const topic = fc.array(level, { minLength: 1, maxLength: 5 }).map((ls) => ls.join('/')).filter((t) => t !== '');
  const filter = fc
    .tuple(fc.array(fc.oneof(level, fc.constant('+')), { minLength: 1, maxLength: 5 }), fc.boolean())
    .map(([ls, hash]) => [...ls, ...(hash ? ['#'] : [])].join('/'))
    .filter((f) => f !== '');

  it('matchesSplit agrees with protocol/wire/topics.ts topicMatches', () => {
    fc.assert(fc.property(filter, topic, (f, t) => matchesSplit(f.split('/'), t) === topicMatches(f, t)), { numRuns: 5000 });
  });

  it('handles the spec examples', () => {
    const m = (f: string, t: string): boolean => matchesSplit(f.split('/'), t);
    expect([m('sport/#', 'sport'), m('#', '$SYS/x'), m('+/x', '$SYS/x'), m('$SYS/#', '$SYS/x'), m('a/+', 'a/'), m('+', 'a/b')]).toEqual([
      true, false, false, true, true, false,
    ]);
  });

  it('FilterIndex collects exact and wildcard values', () => {
    const index = new FilterIndex<string>();
    for (const f of ['a/b', 'a/+', '#', 'x/#']) index.set(f, f);
    const out: string[] = [];
    index.collect('a/b', out);
    expect(out.sort()).toEqual(['#', 'a/+', 'a/b']);
    index.delete('a/+');
    expect(index.get('a/+')).toBeUndefined();
    expect(index.some('x/y', (v) => v === 'x/#')).toBe(true);
  });

  it('validateFilter rejects misplaced wildcards', () => {
    for (const bad of ['a/#/b', 'a#', 'a/b+', '']) expect(() => validateFilter(bad)).toThrow(MisuseError);
    for (const good of ['#', '+', 'a/+/b/#', '+/+']) expect(() => validateFilter(good)).not.toThrow();
  });
});

describe('MemoryHub specifics', () => {
  it('delivers asynchronously, in hub-wide publish order across clients', async () => {
    const hub = new MemoryHub();
    const [a, c, sub] = [hub.connect('a'), hub.connect('c'), hub.connect('sub')];
    const log: string[] = [];
    await sub.subscribe('t/#', (topic, p) => log.push(`${topic}:${new TextDecoder().decode(p)}`));
    void a.publish('t/a', b('1'));
    void c.publish('t/c', b('2'));
    void a.publish('t/a', b('3'));
    expect(log).toEqual([]);
    await hub.idle();
    expect(log).toEqual(['t/a:1', 't/c:2', 't/a:3']);
  });

  it('copies the payload at publish, so the publisher may reuse its buffer', async () => {
    const hub = new MemoryHub();
    const bus = hub.connect('a');
    const got: number[] = [];
    await bus.subscribe('t', (_t, p) => got.push(p[0]!));
    const buf = new Uint8Array([1]);
    void bus.publish('t', buf);
    buf[0] = 2;
    await bus.idle();
    expect(got).toEqual([1]);
  });

  it('keeps delivering handler-published messages in order (and yields to the event loop on long chains)', async () => {
    const hub = new MemoryHub();
    const bus = hub.connect('ping');
    let count = 0;
    await bus.subscribe('chain', () => {
      if (++count < 25_000) void bus.publish('chain', b('x'));
    });
    let ticks = 0;
    const timer = setInterval(() => ticks++, 0);
    await bus.publish('chain', b('x'));
    await bus.idle();
    clearInterval(timer);
    expect(count).toBe(25_000);
    expect(ticks).toBeGreaterThan(0);
  });

  it('reports handler errors through onError', async () => {
    const errors: unknown[] = [];
    const hub = new MemoryHub({ onError: (e, ctx) => errors.push([ctx.clientId, ctx.topic, (e as Error).message]) });
    const bus = hub.connect('a');
    await bus.subscribe('t', () => {
      throw new Error('boom');
    });
    await bus.publish('t', b('x'));
    await bus.idle();
    expect(errors).toEqual([['a', 't', 'boom']]);
    expect(bus.handlerErrors).toBe(1);
  });

  it('publishes the will on an unexpected disconnect only, and refuses duplicate client ids', async () => {
    const hub = new MemoryHub();
    const watcher = hub.connect('w');
    const log: string[] = [];
    await watcher.subscribe('status/+', (t, p) => log.push(`${t}=${new TextDecoder().decode(p)}`));
    hub.connect('clean', { will: { topic: 'status/clean', payload: b('gone'), retain: true } });
    expect(() => hub.connect('clean')).toThrow(MisuseError);
    const crashy = hub.connect('crashy', { will: { topic: 'status/crashy', payload: b('gone'), retain: true } });
    await hub.disconnectUnexpectedly('clean');
    await crashy.publish('status/crashy', b('up'));
    await hub.disconnectUnexpectedly('crashy');
    await hub.idle();
    expect(log).toEqual(['status/clean=gone', 'status/crashy=up', 'status/crashy=gone']);
    const late: string[] = [];
    await hub.connect('late').subscribe('status/crashy', (_t, p) => late.push(new TextDecoder().decode(p)));
    expect(late).toEqual(['gone']);
  });
});
