/**
 * Adversaries in the quarantine city (issue 3 "Adversaries"): the driver side
 * of actors/quarantine/adversary.ts. From the plan's `absenceAttacks` and
 * `floods` it spawns one device (two for a relay) per attack episode, places
 * it (positions map + air.positionsChanged()), switches it with
 * `adversary.capture` / `adversary.attack`, and samples the flooded phones'
 * context sizes. Off (no attack in the plan): nothing is spawned.
 *
 * Episodes, for absence [start, end) of household i:
 * - replay: captures next to the beacon during [start − lead − 10 min, start − lead),
 *   re-advertises next to the away phone during the absence;
 * - forge: next to the away phone during the absence;
 * - relay: home half next to the beacon, away half next to the away phone,
 *   during the absence; captured tokens go home → away over the bus and are
 *   re-advertised relayDelayMs later;
 * - phone-at-home: no device; run.ts leaves the phone at home.
 * Flood [start, end) of household i: floodSources flooders within 2 m of the home phone.
 */
import type { AnyStateMachine } from 'xstate';
import { createAdversaryMachine, type AdversaryContext, type AdversaryInput, type AdversaryKind } from '../../../actors/quarantine/adversary.ts';
import type { QuarantinePhoneContext } from '../../../actors/quarantine/phone.ts';
import { SeededRng } from '../../../protocol/crypto/drbg.ts';
import type { CryptoSuite } from '../../../protocol/crypto/suite.ts';
import { inboxTopic } from '../../../protocol/wire/topics.ts';
import type { SimAir } from '../../../hardware/sim/medium.ts';
import type { Position } from '../../../hardware/sim/propagation.ts';
import type { ActorSpec, Host } from '../../host/host.ts';
import type { VirtualScheduler } from '../../time/virtual.ts';
import { awayOf, type QuarantineProtocol } from './actors.ts';
import type { AttacksConfig, HouseholdPlan, Interval } from './plan.ts';

const MINUTE = 60_000;
const CAPTURE_MS = 10 * MINUTE;
const SAMPLE_MS = 5_000;

interface Episode {
  readonly kind: AdversaryKind;
  readonly id: string;
  readonly household: number;
  readonly input: AdversaryInput;
  /** Where and when: capture (scan) spans and attack (advertise) spans. */
  readonly capture?: Interval & { readonly where: 'home' | 'away' };
  readonly attack?: Interval & { readonly where: 'home' | 'away' | 'phone' };
  readonly offset?: { readonly dx: number; readonly dy: number };
}

/** Largest context sizes seen on a flooded phone while flooded (sampled every 5 s and at each flood's end). */
export interface FloodedPhoneSizes {
  readonly maxSources: number;
  readonly maxPendingFrames: number;
  readonly maxPendingBytes: number;
  readonly maxBuffer: number;
  readonly maxSeen: number;
}

export interface AdversaryRuntime {
  readonly episodes: readonly Episode[];
  readonly flooded: FloodedPhoneSizes;
}

function episodes(p: QuarantineProtocol, plans: readonly HouseholdPlan[], attacks: AttacksConfig, seed: Uint8Array, t0: number): Episode[] {
  const root = new SeededRng(seed).fork('adversaries');
  const out: Episode[] = [];
  const base = (kind: AdversaryKind, id: string, household: number, extra: Partial<AdversaryInput> = {}): AdversaryInput => ({
    id,
    kind,
    seed: root.fork(id).bytes(32),
    advertisingIntervalMs: p.advertisingIntervalMs,
    tickMs: p.beaconPeriodS * 1000,
    ...extra,
  });
  for (const plan of plans) {
    const i = plan.index;
    for (const [j, a] of plan.absences.entries()) {
      const kind = plan.absenceAttacks?.[j] ?? null;
      if (kind === 'replay') {
        const id = `adv-replay-${i}-${j}`;
        const captureEnd = Math.max(t0 + MINUTE, a.start - attacks.replayLeadMinutes * MINUTE);
        const capture = { start: Math.max(t0 + MINUTE, captureEnd - CAPTURE_MS), end: captureEnd, where: 'home' as const };
        out.push({ kind, id, household: i, input: base(kind, id, i), capture, attack: { ...a, where: 'away' } });
      } else if (kind === 'forge') {
        const id = `adv-forge-${i}-${j}`;
        out.push({ kind, id, household: i, input: base(kind, id, i), attack: { ...a, where: 'away' } });
      } else if (kind === 'relay') {
        const away = `adv-relaya-${i}-${j}`;
        const home = `adv-relayh-${i}-${j}`;
        out.push({ kind: 'relay-advertise', id: away, household: i, input: base('relay-advertise', away, i, { relay: { delayMs: attacks.relayDelayMs } }), attack: { ...a, where: 'away' } });
        out.push({
          kind: 'relay-capture', id: home, household: i,
          input: base('relay-capture', home, i, { relay: { peerTopic: inboxTopic('adversary', away) } }),
          capture: { ...a, where: 'home' },
        });
      }
    }
    for (const [j, f] of (plan.floods ?? []).entries()) {
      for (let s = 0; s < attacks.floodSources; s++) {
        const id = `adv-flood-${i}-${j}-${s}`;
        const angle = (2 * Math.PI * s) / attacks.floodSources;
        out.push({
          kind: 'flood', id, household: i,
          input: base('flood', id, i, { advertisingIntervalMs: attacks.floodIntervalMs, tickMs: 5_000 }),
          attack: { ...f, where: 'phone' },
          offset: { dx: 2 * Math.cos(angle), dy: 2 * Math.sin(angle) },
        });
      }
    }
  }
  return out;
}

/** Spawn the adversaries of the plan and schedule their placement and switching. */
export async function setUpAdversaries(o: {
  crypto: CryptoSuite;
  protocol: QuarantineProtocol;
  plans: readonly HouseholdPlan[];
  attacks: AttacksConfig;
  seed: Uint8Array;
  t0: number;
  host: Host;
  scheduler: VirtualScheduler;
  positions: Map<string, Position>;
  air: SimAir;
}): Promise<AdversaryRuntime> {
  const list = episodes(o.protocol, o.plans, o.attacks, o.seed, o.t0);
  const flooded = { maxSources: 0, maxPendingFrames: 0, maxPendingBytes: 0, maxBuffer: 0, maxSeen: 0 };
  if (list.length === 0) return { episodes: list, flooded };
  const machine = createAdversaryMachine({ crypto: o.crypto }) as AnyStateMachine;
  for (const e of list) {
    const spec: ActorSpec = { role: 'adversary', id: e.id, machine, input: e.input };
    await o.host.spawn(spec);
  }
  const homeOfPlan = new Map(o.plans.map((p) => [p.index, { beacon: o.positions.get(p.beaconId), phone: o.positions.get(p.phoneId), phoneId: p.phoneId }]));
  const place = (e: Episode, where: 'home' | 'away' | 'phone'): void => {
    const h = homeOfPlan.get(e.household);
    const anchor = where === 'home' ? h?.beacon : where === 'phone' ? h?.phone : awayOf(e.household);
    if (anchor === undefined) return;
    const dx = e.offset?.dx ?? 1;
    const dy = e.offset?.dy ?? 0;
    o.positions.set(e.id, { ...anchor, x: anchor.x + dx, y: anchor.y + dy });
    o.air.positionsChanged();
  };
  const unplace = (e: Episode): void => {
    o.positions.delete(e.id);
    o.air.positionsChanged();
  };
  const send = (e: Episode, type: 'adversary.capture' | 'adversary.attack', on: boolean): void => o.host.sendTo('adversary', e.id, { type, at: o.scheduler.now(), on });
  for (const e of list) {
    const c = e.capture;
    if (c !== undefined) {
      o.scheduler.at(c.start, () => (place(e, c.where), send(e, 'adversary.capture', true)));
      o.scheduler.at(c.end, () => (send(e, 'adversary.capture', false), unplace(e)));
    }
    const a = e.attack;
    if (a !== undefined) {
      o.scheduler.at(a.start, () => (place(e, a.where), send(e, 'adversary.attack', true)));
      o.scheduler.at(a.end, () => (send(e, 'adversary.attack', false), unplace(e)));
    }
  }
  // Flooded phones' context sizes, sampled while flooded.
  const sample = (phoneId: string): void => {
    const c = o.host.snapshotOf('phone', phoneId).context as QuarantinePhoneContext;
    flooded.maxSources = Math.max(flooded.maxSources, c.sources.length);
    flooded.maxPendingFrames = Math.max(flooded.maxPendingFrames, c.reassembly.pending.length);
    flooded.maxPendingBytes = Math.max(flooded.maxPendingBytes, c.reassembly.pendingBytes);
    flooded.maxBuffer = Math.max(flooded.maxBuffer, c.buffer.length);
    flooded.maxSeen = Math.max(flooded.maxSeen, c.seen.length);
  };
  for (const plan of o.plans) {
    for (const f of plan.floods ?? []) {
      for (let t = f.start; t < f.end; t += SAMPLE_MS) o.scheduler.at(t, () => sample(plan.phoneId));
      o.scheduler.at(f.end, () => sample(plan.phoneId));
    }
  }
  return { episodes: list, flooded };
}

/** Summed counters of every adversary, by kind. */
export function adversaryCounters(host: Host, rt: AdversaryRuntime): Record<string, Record<string, number>> {
  const out: Record<string, Record<string, number>> = {};
  for (const e of rt.episodes) {
    const c = (host.snapshotOf('adversary', e.id).context as AdversaryContext).counters;
    const sum = (out[e.kind] ??= { devices: 0 });
    sum['devices'] = (sum['devices'] ?? 0) + 1;
    for (const [k, v] of Object.entries(c) as [string, number][]) if (v !== 0) sum[k] = (sum[k] ?? 0) + v;
  }
  return out;
}
