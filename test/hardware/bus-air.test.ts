/**
 * BusAir specifics: cell topics, subscriptions that follow the radios,
 * equivalence with SimAir, and hostile air messages dropped with a count.
 * (The Radio contract on BusAir runs in sim-radio.test.ts.)
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ReceivedFrame } from '../../actors/ports.ts';
import { BusAir, cellName } from '../../hardware/sim/bus-medium.ts';
import type { Position } from '../../hardware/sim/propagation.ts';
import { MisuseError } from '../../protocol/errors.ts';
import { encodeAir, AIR_VERSION, MAX_AIR_PAYLOAD } from '../../protocol/wire/air.ts';
import { packWire } from '../../protocol/wire/msgpack.ts';
import { AIR_FILTER, SEGMENT_PATTERN, airTopic } from '../../protocol/wire/topics.ts';
import { VirtualScheduler } from '../../services/time/virtual.ts';
import type { MemoryHub } from '../../services/bus/memory.ts';
import { seededRng } from '../support/test-rng.ts';
import { QUIET, START, runBusScenario, runSimScenario, testHub, text } from './sim-air.ts';

function world(positions: Map<string, Position>): { hub: MemoryHub; handlerErrors: unknown[]; air: BusAir; scheduler: VirtualScheduler } {
  const scheduler = new VirtualScheduler(START);
  const { hub, handlerErrors } = testHub();
  const air = new BusAir({ bus: hub.connect('host'), scheduler, rng: seededRng(4), propagation: QUIET, positions: (id) => positions.get(id) });
  scheduler.addQuiescence(() => hub.idle());
  scheduler.addQuiescence(() => air.settled());
  return { hub, handlerErrors, air, scheduler };
}

describe('BusAir cells', () => {
  it('names cells as topic segments, negatives with an m prefix', () => {
    expect(cellName(0, 0)).toBe('0_0');
    expect(cellName(-3, 5)).toBe('m3_5');
    expect(cellName(12, -1)).toBe('12_m1');
    fc.assert(
      fc.property(fc.integer({ min: -1e9, max: 1e9 }), fc.integer({ min: -1e9, max: 1e9 }), (x, y) => {
        expect(cellName(x, y)).toMatch(SEGMENT_PATTERN);
        expect(() => airTopic(cellName(x, y))).not.toThrow();
      }),
    );
  });

  it('refuses cells smaller than the radio range (3×3 would miss frames)', () => {
    const scheduler = new VirtualScheduler(START);
    const bus = testHub().hub.connect('h');
    expect(() => new BusAir({ bus, scheduler, rng: seededRng(1), positions: () => undefined, cellSizeM: 100 })).toThrow(MisuseError);
    expect(new BusAir({ bus, scheduler, rng: seededRng(1), positions: () => undefined }).cellSizeM).toBeGreaterThan(700);
  });

  it('publishes to the sender’s cell and subscribes to the 3×3 cells around each scanner, following it', async () => {
    const positions = new Map<string, Position>([
      ['tx', { x: -10, y: -10 }],
      ['rx', { x: 10, y: 10 }],
    ]);
    const { hub, handlerErrors, air, scheduler } = world(positions);
    const spy = hub.connect('spy');
    const topics = new Set<string>();
    await spy.subscribe(AIR_FILTER, (topic) => topics.add(topic));
    await air.attach('tx').advertise([text('t')], 100);
    const rx = air.attach('rx');
    await rx.startScan(() => undefined);
    await scheduler.runUntil(START + 500);
    expect([...topics]).toEqual([airTopic('m1_m1')]);
    expect(air.subscribedCells).toEqual(['0_0', '0_1', '0_m1', '1_0', '1_1', '1_m1', 'm1_0', 'm1_1', 'm1_m1']);
    // Move far away: the periodic refresh (1 s) follows without being told…
    const far = air.cellSizeM * 10.5;
    positions.set('rx', { x: far, y: 0 });
    await scheduler.runUntil(START + 2_000);
    expect(air.subscribedCells).toContain('10_0');
    expect(air.subscribedCells).not.toContain('m1_m1');
    // …and positionsChanged() follows at once.
    positions.set('rx', { x: 0, y: -far });
    air.positionsChanged();
    await air.settled();
    expect(air.subscribedCells).toContain('0_m10');
    await rx.stopScan();
    expect(air.subscribedCells).toEqual([]);
    await air.close();
    // Closed: nothing subscribed any more, so nothing is received.
    const received = air.busCounters.received;
    await spy.publish(airTopic('0_m10'), new Uint8Array([1]), { qos: 0 });
    await hub.idle();
    expect(air.busCounters.received).toBe(received);
    expect(handlerErrors).toEqual([]);
  });
});

describe('BusAir delivery', () => {
  const layoutArb = fc
    .array(fc.record({ x: fc.integer({ min: -300, max: 300 }), y: fc.integer({ min: -300, max: 300 }) }), { minLength: 2, maxLength: 12 })
    .map((ps) => ps.map((p, i): [string, Position] => [`r${i}`, p]));

  it('hears what SimAir hears (no noise, no loss), across hosts and cells', async () => {
    // Range is 112 m without noise and cells are 162 m: ±300 m mixes near and far pairs over 4×4 cells.
    let heardPairs = 0;
    await fc.assert(
      fc.asyncProperty(layoutArb, fc.integer({ min: 1, max: 3 }), async (layout, hosts) => {
        const opts = { seed: 1, layout, propagation: QUIET, durationMs: 1_500 };
        const sim = await runSimScenario(opts);
        const bus = await runBusScenario({ ...opts, hosts });
        expect([...bus.heard].sort()).toEqual([...sim.heard].sort());
        heardPairs += sim.heard.size;
        for (const air of bus.airs) expect(air.busCounters.rejected).toBe(0);
      }),
      { numRuns: 25 },
    );
    expect(heardPairs).toBeGreaterThan(25);
  });

  it('drops malformed air messages with a typed, counted rejection and keeps working', async () => {
    const positions = new Map<string, Position>([['rx', { x: 0, y: 0 }]]);
    const { hub, handlerErrors, air, scheduler } = world(positions);
    const frames: ReceivedFrame[] = [];
    const rx = air.attach('rx');
    await rx.startScan((f) => frames.push(f));
    const evil = hub.connect('evil');
    const topic = airTopic(air.cellOf({ x: 0, y: 0 }));
    const good = { v: AIR_VERSION, from: 'tx', address: '01:02:03:04:05:06', x: 1, y: 0, txAt: START, payload: text('ok') } as const;
    const hostile: Uint8Array[] = [
      new Uint8Array(0),
      new Uint8Array([0xc1]),
      packWire([1, 2, 3]),
      packWire({ ...good, v: 2 }),
      packWire({ ...good, extra: 1 }),
      packWire({ ...good, x: 'east' }),
      packWire({ ...good, txAt: -1 }),
      packWire({ ...good, payload: new Uint8Array(0) }),
      packWire({ ...good, payload: new Uint8Array(MAX_AIR_PAYLOAD + 1) }),
      packWire({ ...good, from: '' }),
      packWire({ ...good, room: 7 }),
      ...fc.sample(fc.uint8Array({ minLength: 1, maxLength: 64 }), { seed: 3, numRuns: 200 }),
    ];
    const before = air.busCounters.received;
    for (const bytes of hostile) await evil.publish(topic, bytes, { qos: 0 });
    await hub.idle();
    expect(air.busCounters.received - before).toBe(hostile.length);
    expect(air.busCounters.rejected).toBe(hostile.length);
    expect([...air.busCounters.rejectedBy.keys()].every((k) => k.startsWith('air/'))).toBe(true);
    expect(air.busCounters.rejectedBy.get('air/unknown-version')).toBeGreaterThanOrEqual(1);
    expect(frames).toEqual([]);
    expect(handlerErrors).toEqual([]);
    // A well-formed message still goes through, with the sender's position from the message.
    await evil.publish(topic, encodeAir(good), { qos: 0 });
    await evil.publish(topic, encodeAir({ ...good, x: 5_000 }), { qos: 0 });
    await scheduler.runUntil(START + 10);
    expect(frames.map((f) => [new TextDecoder().decode(f.payload), f.rssi, f.address])).toEqual([['ok', -59, good.address]]);
    await air.close();
  });
});
