/**
 * The tracing phone with the DIMY engine, model-based (test/support/tracing-model.ts): random
 * host runs checking rotation with the address, retention and report ranges at every step, plus
 * xstate/graph paths through every state of the chart with persist → restore.
 *
 * DIMY reports to its own backend, so the report range is checked on the CBF
 * (EngineModel.ownReport): the model's foreign phones are two fixed X25519 EphIDs whose secrets
 * it knows; their shares reach the phone as single-fragment frames (an extended advertisement).
 * A CBF reveals an own EphID E to a peer with secret y when X25519(y, E) is in it; the model
 * reconstructs every E the phone advertised k shares of and checks that each revealed one was
 * on the air within [infectiousFrom's day − one epoch, diagnosis] — and none after it.
 */
import { describe, expect, it } from 'vitest';
import { dimyEngine, dimyEngineConfig, type DimyState } from '../../actors/tracing/dimy-engine.ts';
import { bloomContains } from '../../protocol/dimy/bloom.ts';
import { decodeDimyShare, dimyEncId, dimyEphId, encodeDimyShare, reconstructEphId, splitEphId, type DimyShare } from '../../protocol/dimy/ephid.ts';
import { dimyCbfAckCodec, dimyCbfUploadCodec, dimyQbfResultCodec, DIMY_UPLOAD_REFUSALS } from '../../protocol/dimy/messages.ts';
import { decodeFragment, fragment, MAX_FRAGMENT_BUDGET_BYTES } from '../../protocol/wire/framing.ts';
import type { WireValue } from '../../protocol/wire/msgpack.ts';
import { nodeSuite } from '../../services/crypto/node.ts';
import { exploreTracingChart, hex, runTracingModels, type EngineModel } from '../support/tracing-model.ts';

const DAY = 86_400_000;
/** Three DBFs kept, so the random runs (days long) see the pool roll over. */
const config = dimyEngineConfig({ dbfCount: 3 });
const T0 = Math.ceil(Date.UTC(2026, 0, 5, 7, 13) / config.epochMs) * config.epochMs;

const PEER_SECRETS = [new Uint8Array(32).fill(0x51), new Uint8Array(32).fill(0x52)];
const PEER_SHARES: readonly DimyShare[][] = PEER_SECRETS.map((secret, i) =>
  splitEphId(nodeSuite, dimyEphId(nodeSuite, secret), new Uint8Array(32 * (config.k - 1)).fill(0x60 + i), { k: config.k, n: config.n }),
);
/** Reports whose CBF revealed at least one own EphID (the check is not vacuous). */
let revealing = 0;

/** The share an advertising set (one frame's fragments) carries. */
function shareOf(set: readonly Uint8Array[]): DimyShare | undefined {
  const parts = set.map((p) => decodeFragment(p)).flatMap((f) => (f.ok ? [f.value] : []));
  const body = Buffer.concat(parts.sort((a, b) => a.index - b.index).map((f) => f.chunk));
  const share = decodeDimyShare(new Uint8Array(body.subarray(0, Math.max(0, body.length - 4))));
  return share.ok ? share.value : undefined;
}

function revealedByCbf(body: unknown, advertised: readonly (readonly Uint8Array[])[]): ReadonlySet<string> {
  const upload = dimyCbfUploadCodec.decode(body as WireValue);
  if (!upload.ok) throw new Error(upload.detail);
  const byTag = new Map<string, { shares: DimyShare[]; ids: string[] }>();
  for (const set of advertised) {
    const share = shareOf(set);
    if (share === undefined) throw new Error('the phone advertised something that is not a share');
    const group = byTag.get(hex(share.tag)) ?? { shares: [], ids: [] };
    if (!group.shares.some((s) => s.index === share.index)) group.shares.push(share);
    group.ids.push(...set.map(hex));
    byTag.set(hex(share.tag), group);
  }
  const ids = new Set<string>();
  for (const group of byTag.values()) {
    if (group.shares.length < config.k) continue;
    const ephId = reconstructEphId(nodeSuite, group.shares, config.k);
    if (!ephId.ok) throw new Error(ephId.detail);
    const met = PEER_SECRETS.some((y) => {
      const encId = dimyEncId(nodeSuite, y, ephId.value);
      return encId.ok && bloomContains(upload.value.filter, encId.value);
    });
    if (met) group.ids.forEach((id) => ids.add(id));
  }
  if (ids.size > 0) revealing++;
  return ids;
}

const dimyModel: EngineModel<DimyState, typeof config> = {
  engine: dimyEngine,
  config,
  retentionMs: config.dbfCount * DAY,
  // Each fragment is its own identifier: a share's fragments carry its frame id, unique per rotation.
  idOf: (payload) => hex(payload),
  // Nothing goes to the key server.
  revealed: () => new Set(),
  // An EphID on the air up to one epoch before the first reported day can complete an EncID on that day.
  earliestRevealable: (infectiousFrom) => Math.floor(infectiousFrom / DAY) * DAY - config.epochMs,
  foreignPayload: (rng) => {
    const peer = PEER_SHARES[rng.float() < 0.8 ? 0 : 1] ?? [];
    const share = peer[rng.int(config.n)] as DimyShare;
    // One in ten is damaged: it passes the framing and the share codec but fails the tag check.
    const bytes = rng.float() < 0.1 ? share.bytes.map((b, i) => (i === 0 ? b ^ 0x80 : b)) : share.bytes;
    return fragment(encodeDimyShare({ ...share, bytes }), rng.int(65_536), MAX_FRAGMENT_BUDGET_BYTES)[0] as Uint8Array;
  },
  ownReport: { msgType: 'dimy.cbf.upload', revealed: (_crypto, body, advertised) => revealedByCbf(body, advertised) },
  engineMessage: (rng) => {
    const roll = rng.float();
    if (roll < 0.6) {
      const matches = roll < 0.4 ? 1 + rng.int(3) : 0;
      return { type: 'dimy.qbf.result', body: dimyQbfResultCodec.encode({ matched: matches > 0, searched: matches + rng.int(4), matches, reason: '' }) };
    }
    if (roll < 0.85) {
      const accepted = rng.float() < 0.5;
      const reason = accepted ? '' : (DIMY_UPLOAD_REFUSALS[rng.int(DIMY_UPLOAD_REFUSALS.length)] ?? 'used');
      return { type: 'dimy.cbf.ack', body: dimyCbfAckCodec.encode({ accepted, reason }) };
    }
    return { type: rng.float() < 0.5 ? 'dimy.qbf.result' : 'dimy.cbf.ack', body: { accepted: 'perhaps' } };
  },
};

describe('tracing phone × DIMY, random host runs (model)', () => {
  it('shares rotate with the address, retention holds, CBFs stay in range — 25 runs × 400 steps', () => {
    revealing = 0;
    const { states, uploads } = runTracingModels(dimyModel, 25, 400, T0);
    // No key-server upload: a diagnosis passes through uploading straight to reported.
    expect(states).toEqual(['reported', 'stopped', 'tracing']);
    expect(uploads).toBeGreaterThan(10);
    expect(revealing).toBeGreaterThan(3);
  }, 180_000);
});

describe('tracing phone × DIMY, every state and transition (xstate/graph)', () => {
  it('reaches idle, tracing, reported and stopped (uploading is passed through); invariants hold on every step and snapshot', () => {
    const frames = [0, 1, 2].map((i) => ({ payload: fragment(encodeDimyShare(PEER_SHARES[0]?.[i] as DimyShare), 9 + i, MAX_FRAGMENT_BUDGET_BYTES)[0] as Uint8Array, rssi: -60, at: T0 + 1000 + i, address: 'AA:AA:AA:AA:AA:AA' }));
    const envelope = (type: string) => ({ v: 1, type, id: 'm', from: 'app-backend/dimy', at: T0, body: null });
    const states = exploreTracingChart<DimyState, typeof config>({
      engine: dimyEngine,
      config,
      t0: T0,
      frames,
      rotateAt: T0 + config.shareMs,
      extraEvents: [
        { type: 'timer.exchange', at: T0 + 2 * DAY },
        { type: 'msg.dimy.qbf.result', at: T0 + 2 * DAY + 1, envelope: envelope('dimy.qbf.result'), body: dimyQbfResultCodec.encode({ matched: true, searched: 1, matches: 1, reason: '' }) },
        { type: 'msg.dimy.cbf.ack', at: T0 + 3000, envelope: envelope('dimy.cbf.ack'), body: dimyCbfAckCodec.encode({ accepted: true, reason: '' }) },
      ] as { type: string; at: number }[],
      detail: (c) => `cbf:${c.engine.exchange.pending === null ? 'none' : 'pending'}`,
      invariant: ({ state, context, effects }) => {
        // DIMY never uploads to the key server.
        expect(effects.some((e) => e.type === 'bus.send' && e.msgType === 'keys.upload')).toBe(false);
        expect(context.upload).toBeNull();
        if (state === 'reported') expect(context.engine.exchange.reported).toBe(true);
      },
    });
    expect(states).toEqual(['idle', 'reported', 'stopped', 'tracing']);
  });
});
