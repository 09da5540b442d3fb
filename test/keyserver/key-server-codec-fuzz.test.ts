/**
 * Issue 4 acceptance, "≥ 10,000 malformed submissions → typed rejections
 * only", at the first gate a submission passes: the codecs
 * (protocol/keyserver/messages.ts through `keyServerMessages()`), which the
 * host runs on every bus message. Random wire-dialect bodies and mutations of
 * valid `keys.upload` bodies only ever give verdicts, and every rejection's
 * reason is one of the decoders' documented reasons. The second gate, the
 * machine, is fuzzed in key-server-machine-fuzz.test.ts.
 *
 * Seeds are fixed, so the counts and the reasons covered are reproducible.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { keyServerMessages, keysUploadCodec, MAX_UPLOAD_PADDING_BYTES, MAX_UPLOAD_RECORD_BYTES, type KeysUpload } from '../../protocol/keyserver/messages.ts';
import { CROCKFORD_ALPHABET, UPLOAD_CODE_MAX_INPUT_CHARS, UPLOAD_CODE_REJECTION_REASONS } from '../../protocol/keyserver/upload-code.ts';
import type { Verdict } from '../../protocol/errors.ts';
import { packWire, unpackWire, type WireMap, type WireValue } from '../../protocol/wire/msgpack.ts';
import {
  codeText,
  DECODE_REJECTION_REASONS,
  filled,
  KEY_SERVER_INPUT_TYPES,
  mutateBytes,
  packedRecordsArb,
  wireBodyArb,
  withWrongCheck,
} from '../support/key-server-arbitraries.ts';
import { DAY, T0 } from '../support/key-server-fixtures.ts';
import { prng } from '../support/test-rng.ts';

const TODAY = Math.floor(T0 / DAY);
/** Every type the key-server registry knows (inputs and replies), and one it does not. */
const REPLY_TYPES = ['keys.upload.ack', 'keys.status.reply', 'keys.admin.result', 'keys.file.get', 'keys.file'];
const ALL_TYPES = [...KEY_SERVER_INPUT_TYPES, ...REPLY_TYPES, 'keys.nope'];

/**
 * What is wrong with a verdict (undefined when nothing): it must be exactly
 * `{ ok: true, value }` or a typed Rejection of `type`'s codec with a known
 * reason. Plain checks, not expect(): this runs 130,000 times.
 */
function verdictProblem(type: string, verdict: Verdict<unknown>): string | undefined {
  if (typeof verdict !== 'object' || verdict === null) return 'not an object';
  if (verdict.ok) return Object.keys(verdict).sort().join() === 'ok,value' ? undefined : `accepted with keys ${Object.keys(verdict).join()}`;
  if (verdict.ok !== false) return 'ok is not a boolean';
  if (!Object.keys(verdict).every((k) => ['ok', 'codec', 'reason', 'detail', 'field'].includes(k))) return `rejection with keys ${Object.keys(verdict).join()}`;
  if (verdict.codec !== (verdict.reason === 'unknown-type' ? 'message' : type)) return `codec ${verdict.codec} for ${type}`;
  if (!DECODE_REJECTION_REASONS.includes(verdict.reason)) return `unknown reason ${verdict.reason}`;
  if (typeof verdict.detail !== 'string') return 'detail is not a string';
  if (verdict.field !== undefined && typeof verdict.field !== 'string') return 'field is not a string';
  if (verdict.reason === 'bad-code' && (verdict.field !== 'code' || !UPLOAD_CODE_REJECTION_REASONS.some((r) => verdict.detail.startsWith(`${r}:`)))) {
    return `bad-code without an upload-code reason: ${verdict.detail}`;
  }
  return undefined;
}

/** Throws unless the verdict is well-typed; returns its reason ('ok' when accepted). */
function checkVerdict(type: string, verdict: Verdict<unknown>): string {
  const problem = verdictProblem(type, verdict);
  if (problem !== undefined) throw new Error(`${type}: ${problem}`);
  return verdict.ok ? 'ok' : verdict.reason;
}

describe('fuzz: key-server codecs → verdicts with known reasons only', () => {
  it('10,000 random msgpack-ish bodies × every key-server message type (130,000 decodes) never throw, reasons ⊆ the documented set', () => {
    const registry = keyServerMessages();
    const seen = new Map<string, number>();
    let bodies = 0;
    let decodes = 0;
    let accepted = 0;
    fc.assert(
      fc.property(wireBodyArb, (body) => {
        bodies++;
        for (const type of ALL_TYPES) {
          const verdict = registry.decodeBody(type, body);
          decodes++;
          const reason = checkVerdict(type, verdict);
          seen.set(reason, (seen.get(reason) ?? 0) + 1);
          if (verdict.ok && type === 'keys.upload') {
            // An accepted body re-encodes canonically and decodes to the same value.
            const again = keysUploadCodec.decode(keysUploadCodec.encode(verdict.value as KeysUpload));
            expect(again).toEqual(verdict);
            accepted++;
          }
        }
        // The host's path: the same body through msgpack first decodes the same way.
        const wire = unpackWire(packWire(body), 'envelope');
        if (!wire.ok || registry.decodeBody('keys.upload', wire.value).ok !== registry.decodeBody('keys.upload', body).ok) throw new Error('msgpack round trip changed the verdict');
      }),
      { numRuns: 10_000, seed: 4_100_001 },
    );
    expect(bodies).toBeGreaterThanOrEqual(10_000);
    expect(decodes).toBe(bodies * ALL_TYPES.length);
    const reasons = [...seen.keys()].filter((r) => r !== 'ok');
    expect(reasons.every((r) => DECODE_REJECTION_REASONS.includes(r))).toBe(true);
    // The bias towards real field names and message shapes reaches every field check (and sometimes accepts).
    for (const r of ['not-a-map', 'field-type', 'field-length', 'field-range', 'field-format', 'unknown-field', 'bad-code', 'unknown-type']) expect(reasons).toContain(r);
    expect(seen.get('ok') ?? 0).toBeGreaterThan(0);
    expect(accepted).toBeGreaterThan(0);
  });

  // ---------------------------------------------------------------- mutations of valid uploads

  type Expectation = { readonly ok: true; readonly check?: (value: KeysUpload) => void } | { readonly ok: false; readonly reason: string; readonly field?: string; readonly detail?: string };
  interface Mutated {
    readonly kind: string;
    readonly body: WireValue;
    readonly expect: Expectation;
  }
  const FIELDS = ['code', 'records', 'chaff', 'padding'] as const;
  const WRONG_VALUES: Record<(typeof FIELDS)[number], readonly WireValue[]> = {
    code: [null, 0, 7.5, true, new Uint8Array(21), [], {}, ['ABCD']],
    records: [null, 0, -1, 'records', false, [], {}, [new Uint8Array(23)]],
    chaff: [null, 0, 1, 'true', new Uint8Array(1), [], {}],
    padding: [null, 0, '', true, [], {}, [new Uint8Array(0)]],
  };
  const BAD_CHARS = ['U', 'u', '*', '!', 'é', '#', '_', '€', '+', '.', '\u00a0*'];

  /** Canonical code text → its symbols (hyphens dropped). */
  const symbolsOf = (text: string): string[] => [...text.replaceAll('-', '')];
  const printedOf = (symbols: readonly string[]): string => symbols.map((s, i) => (i > 0 && i % 4 === 0 && i < 17 ? `-${s}` : s)).join('');

  function mutateUpload(valid: WireMap & { code: string; records: Uint8Array }, kind: string, rand: () => number): Mutated {
    const int = (n: number): number => Math.floor(rand() * n);
    const pick = <T>(list: readonly T[]): T => list[int(list.length)] as T;
    const withField = (name: string, value: WireValue): WireMap => ({ ...valid, [name]: value });
    const badCode = (detail: string): Expectation => ({ ok: false, reason: 'bad-code', field: 'code', detail });
    const symbols = symbolsOf(valid.code);
    switch (kind) {
      case 'flip-record-bytes': {
        let records = mutateBytes(valid.records, rand);
        if (records.length === 0 || records.length > MAX_UPLOAD_RECORD_BYTES) records = valid.records.slice(1).length > 0 ? valid.records.slice(1) : Uint8Array.of(0x7f);
        return { kind, body: withField('records', records), expect: { ok: true, check: (v) => expect(v.records).toEqual(records) } };
      }
      case 'truncate-records': {
        const n = int(valid.records.length);
        return { kind, body: withField('records', valid.records.subarray(0, n)), expect: n === 0 ? { ok: false, reason: 'field-length', field: 'records' } : { ok: true } };
      }
      case 'oversize-records':
        return { kind, body: withField('records', filled(MAX_UPLOAD_RECORD_BYTES + 1 + int(100), 1)), expect: { ok: false, reason: 'field-length', field: 'records' } };
      case 'wrong-type': {
        const field = pick(FIELDS);
        return { kind, body: withField(field, pick(WRONG_VALUES[field])), expect: { ok: false, reason: 'field-type', field } };
      }
      case 'drop-field': {
        const field = pick(FIELDS);
        const { [field]: _dropped, ...rest } = valid;
        return { kind, body: rest, expect: { ok: false, reason: 'field-type', field } };
      }
      case 'extra-field': {
        const name = pick(['x', 'extra', 'Code', 'records ', 'trackingId', 'providerId', 'constructor', '']);
        return { kind, body: withField(name, pick<WireValue>([null, 1, 'x', new Uint8Array(2), {}])), expect: { ok: false, reason: 'unknown-field', field: name } };
      }
      case 'wrong-check-symbol':
        return { kind, body: withField('code', withWrongCheck(valid.code, int(1000))), expect: badCode('bad-check') };
      case 'substitute-symbol': {
        const at = int(symbols.length);
        const was = CROCKFORD_ALPHABET.indexOf(symbols[at] ?? '0');
        symbols[at] = CROCKFORD_ALPHABET.charAt((was + 1 + int(31)) % 32);
        return { kind, body: withField('code', printedOf(symbols)), expect: badCode('bad-check') };
      }
      case 'swap-adjacent': {
        const pairs = symbols.flatMap((s, i) => (i + 1 < symbols.length && symbols[i + 1] !== s ? [i] : []));
        if (pairs.length === 0) return mutateUpload(valid, 'wrong-check-symbol', rand);
        const at = pick(pairs);
        [symbols[at], symbols[at + 1]] = [symbols[at + 1] ?? '', symbols[at] ?? ''];
        return { kind, body: withField('code', printedOf(symbols)), expect: badCode('bad-check') };
      }
      case 'wrong-length': {
        if (rand() < 0.5) symbols.splice(int(symbols.length), 1);
        else symbols.splice(int(symbols.length + 1), 0, pick([...CROCKFORD_ALPHABET]));
        return { kind, body: withField('code', printedOf(symbols)), expect: badCode('wrong-length') };
      }
      case 'bad-character': {
        const at = int(valid.code.length + 1);
        return { kind, body: withField('code', valid.code.slice(0, at) + pick(BAD_CHARS) + valid.code.slice(at)), expect: badCode('bad-character') };
      }
      case 'control-character': {
        const at = int(valid.code.length + 1);
        return { kind, body: withField('code', valid.code.slice(0, at) + pick(['\u0000', '\n', '\t', '\u007f', '\u0085']) + valid.code.slice(at)), expect: { ok: false, reason: 'field-format', field: 'code' } };
      }
      case 'too-long-code':
        return { kind, body: withField('code', valid.code.padEnd(UPLOAD_CODE_MAX_INPUT_CHARS + 1 + int(50), ' ')), expect: { ok: false, reason: 'field-format', field: 'code' } };
      case 'empty-code':
        return { kind, body: withField('code', ''), expect: { ok: false, reason: 'field-format', field: 'code' } };
      case 'forgiving-code': {
        // Case, Crockford look-alikes and other separators are read as the same code.
        const folded = symbols.map((s) => (s === '0' ? pick(['0', 'O', 'o']) : s === '1' ? pick(['1', 'I', 'i', 'L', 'l']) : rand() < 0.5 ? s.toLowerCase() : s));
        const sep = pick(['', ' ', '-', ' - ', '\u2013', '\u2212', '  ']);
        const text = [folded.slice(0, 4), folded.slice(4, 8), folded.slice(8, 12), folded.slice(12, 16), folded.slice(16)].map((g) => g.join('')).join(sep);
        return { kind, body: withField('code', text), expect: { ok: true, check: (v) => expect(v.code.text).toBe(valid.code) } };
      }
      case 'oversize-padding':
        return { kind, body: withField('padding', filled(MAX_UPLOAD_PADDING_BYTES + 1 + int(64), 0)), expect: { ok: false, reason: 'field-length', field: 'padding' } };
      case 'max-padding':
        return { kind, body: withField('padding', filled(MAX_UPLOAD_PADDING_BYTES, 0)), expect: { ok: true } };
      default:
        // 'not-a-map'
        return { kind, body: pick<WireValue>([[valid.code, valid.records, false, new Uint8Array(0)], valid.records, valid.code, null, 1]), expect: { ok: false, reason: 'not-a-map' } };
    }
  }
  const MUTATIONS = [
    'flip-record-bytes',
    'truncate-records',
    'oversize-records',
    'wrong-type',
    'drop-field',
    'extra-field',
    'wrong-check-symbol',
    'substitute-symbol',
    'swap-adjacent',
    'wrong-length',
    'bad-character',
    'control-character',
    'too-long-code',
    'empty-code',
    'forgiving-code',
    'oversize-padding',
    'max-padding',
    'not-a-map',
  ] as const;
  const validWireArb = fc
    .record({
      code: fc.uint8Array({ minLength: 10, maxLength: 10 }).map(codeText),
      records: packedRecordsArb(TODAY),
      chaff: fc.boolean(),
      padding: fc.uint8Array({ maxLength: 64 }),
    })
    .map((v) => v as WireMap & { code: string; records: Uint8Array });

  it('6,000 single mutations of valid keys.upload bodies give exactly the expected verdict (all 18 kinds)', () => {
    const registry = keyServerMessages();
    const kinds = new Map<string, number>();
    fc.assert(
      fc.property(validWireArb, fc.constantFrom(...MUTATIONS), fc.integer(), (valid, kind, seed) => {
        expect(registry.decodeBody('keys.upload', valid).ok).toBe(true);
        const mutated = mutateUpload(valid, kind, prng(seed));
        kinds.set(mutated.kind, (kinds.get(mutated.kind) ?? 0) + 1);
        const verdict = registry.decodeBody('keys.upload', mutated.body);
        checkVerdict('keys.upload', verdict);
        if (mutated.expect.ok) {
          expect(verdict.ok, `${kind}: ${verdict.ok ? '' : verdict.detail}`).toBe(true);
          if (verdict.ok) mutated.expect.check?.(verdict.value as KeysUpload);
        } else {
          expect(verdict.ok, kind).toBe(false);
          if (!verdict.ok) {
            expect(verdict.reason, `${kind}: ${verdict.detail}`).toBe(mutated.expect.reason);
            if (mutated.expect.field !== undefined) expect(verdict.field).toBe(mutated.expect.field);
            if (mutated.expect.detail !== undefined) expect(verdict.detail.startsWith(`${mutated.expect.detail}:`), verdict.detail).toBe(true);
          }
        }
      }),
      { numRuns: 6_000, seed: 4_100_002 },
    );
    expect([...kinds.values()].reduce((a, b) => a + b, 0)).toBe(6_000);
    expect(kinds.size).toBe(MUTATIONS.length);
  });

  it('2,000 stacked mutations (2–4 each) of valid keys.upload bodies give verdicts with known reasons only', () => {
    const registry = keyServerMessages();
    const seen = new Set<string>();
    fc.assert(
      fc.property(validWireArb, fc.array(fc.constantFrom(...MUTATIONS), { minLength: 2, maxLength: 4 }), fc.integer(), (valid, kinds, seed) => {
        const rand = prng(seed);
        let body: WireValue = valid;
        for (const kind of kinds) {
          // Later mutations apply to the map when the body is still one with a code and records.
          const current = body as WireMap;
          if (typeof current === 'object' && current !== null && typeof current['code'] === 'string' && current['records'] instanceof Uint8Array && current['records'].length > 0) {
            body = mutateUpload(current as WireMap & { code: string; records: Uint8Array }, kind, rand).body;
          }
        }
        for (const type of KEY_SERVER_INPUT_TYPES) seen.add(checkVerdict(type, registry.decodeBody(type, body)));
      }),
      { numRuns: 2_000, seed: 4_100_003 },
    );
    for (const r of ['bad-code', 'field-type', 'field-length', 'field-format', 'unknown-field', 'not-a-map']) expect(seen).toContain(r);
  });
});
