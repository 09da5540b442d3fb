/**
 * Key-server distribution (issue 4): record ids, the file and index codecs
 * (fast-check round trips, typed rejections, misuse), and signed
 * content-addressed files under both crypto suites (every single-byte tamper
 * is caught).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { nobleSuite } from '../../protocol/crypto/noble.ts';
import { compactToDer, derToCompact } from '../../protocol/keyserver/gaen-export.ts';
import { toHex } from '../../protocol/keyserver/distribution-records.ts';
import { lowSDer } from '../../protocol/keyserver/distribution-signing.ts';
import {
  canonicalRecordBytes,
  decodeDistributionFile,
  decodeDistributionIndex,
  distributionIndexCodec,
  distributionSigningMessage,
  encodeDistributionFile,
  encodeDistributionIndex,
  MAX_INDEX_DELTAS,
  openDistributionFile,
  recordId,
  signDistributionFile,
  type DiagnosisRecord,
  type DistributionFile,
  type DistributionIndex,
} from '../../protocol/keyserver/distribution.ts';
import { packWire, unpackWire, type WireMap, type WireValue } from '../../protocol/wire/msgpack.ts';
import { nodeSuite } from '../../services/crypto/node.ts';
import { misuseField } from '../support/misuse.ts';
import { prng } from '../support/test-rng.ts';
import {
  hex,
  utf8,
  concat,
  reasonOf,
  valueOf,
  SUITES,
  SIGNING_KEY,
  OTHER_KEY,
  KEY_ID,
  KEYS,
  P256_ORDER,
  OPEN_REASONS,
  tek,
  SEED,
  REPORT,
  idOf,
  NAME_A,
  NAME_B,
  delta,
  fileArb,
  indexArb,
  normalized,
} from '../support/distribution-fixtures.ts';

describe('record ids', () => {
  it('are SHA-256 over "tracecity/keyserver/record/v1" ‖ 0x00 ‖ the documented canonical bytes', () => {
    const t = tek(1);
    expect(hex(canonicalRecordBytes(t))).toBe(`01${hex(t.key)}${(2_700_001).toString(16).padStart(8, '0')}9001`);
    expect(hex(canonicalRecordBytes(SEED))).toBe(`02${'07'.repeat(32)}4e20`);
    expect(hex(canonicalRecordBytes(REPORT))).toBe(`030086${'03'.repeat(134)}`);
    for (const r of [t, SEED, REPORT]) {
      expect(idOf(r)).toBe(hex(nodeSuite.sha256(concat(utf8('tracecity/keyserver/record/v1\u0000'), canonicalRecordBytes(r)))));
      expect(recordId(nobleSuite, r)).toBe(idOf(r));
    }
  });

  it('are flat lowercase hex, byte for byte what Buffer gives (toHex, fast-check)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        expect(toHex(bytes)).toBe(hex(bytes));
      }),
    );
  });

  it('change with every field of a record (a revision is a deletion plus an addition)', () => {
    const t = tek(5);
    const variants: DiagnosisRecord[] = [
      { ...t, key: tek(6).key },
      { ...t, rollingStartIntervalNumber: t.rollingStartIntervalNumber + 1 },
      { ...t, rollingPeriod: 143 },
      { ...t, transmissionRisk: 0 },
      { protocol: 'dp3t-seed', seed: new Uint8Array(32).fill(7), day: 20_001 },
    ];
    const ids = new Set([idOf(t), idOf(SEED), ...variants.map(idOf)]);
    expect(ids.size).toBe(variants.length + 2);
  });
});

// ------------------------------------------------------------ file codec

describe('distribution file codec', () => {
  it('round-trips every valid file (fast-check): additions come back sorted by id with their ids, deletions sorted', () => {
    fc.assert(
      fc.property(fileArb, (file) => {
        const decoded = valueOf(decodeDistributionFile(nodeSuite, encodeDistributionFile(nodeSuite, file)));
        expect(decoded).toEqual(normalized(file));
      }),
      { numRuns: 150 },
    );
  });

  it('encodes one content to one byte string, whatever the order of additions and deletions', () => {
    fc.assert(
      fc.property(fileArb, fc.integer(), (file, seed) => {
        const shuffle = <T>(xs: readonly T[]): T[] => {
          const rand = prng(seed);
          return xs.map((x) => [rand(), x] as const).sort((a, b) => a[0] - b[0]).map(([, x]) => x);
        };
        const reordered = { ...file, additions: shuffle(file.additions), deletions: shuffle(file.deletions) };
        expect(hex(encodeDistributionFile(nodeSuite, reordered))).toBe(hex(encodeDistributionFile(nodeSuite, file)));
      }),
      { numRuns: 60 },
    );
  });

  const base = delta(2, [tek(1), SEED, REPORT], [NAME_B]);
  const baseWire = (): Record<string, WireValue> => ({ ...(valueOf(unpackWire(encodeDistributionFile(nodeSuite, base), 't')) as WireMap) });
  const withField = (name: string, value: WireValue | undefined): Uint8Array => {
    const w = baseWire();
    if (value === undefined) delete w[name];
    else w[name] = value;
    return packWire(w);
  };
  const sortedRecords = (): Uint8Array[] => valueOf(decodeDistributionFile(nodeSuite, encodeDistributionFile(nodeSuite, base))).additions.map(canonicalRecordBytes);
  const withRecords = (...records: Uint8Array[]): Uint8Array => withField('additions', concat(...records));
  /** tek(1)'s canonical bytes with one byte set: 17–20 rolling start, 21 rolling period, 22 transmission risk. */
  const tekWith = (at: number, value: number): Uint8Array => {
    const c = canonicalRecordBytes(tek(1));
    c[at] = value;
    return c;
  };
  const ids = [NAME_A, NAME_B].map((n) => Buffer.from(n, 'hex'));

  it.each([
    ['a later version', () => withField('v', 2), 'unsupported-version', 'v'],
    ['no version', () => withField('v', undefined), 'malformed', 'v'],
    ['an unknown field', () => withField('extra', 1), 'malformed', 'extra'],
    ['a missing field', () => withField('periodEnd', undefined), 'malformed', 'periodEnd'],
    ['seq 0', () => withField('seq', 0), 'malformed', 'seq'],
    ['an unknown kind', () => withField('kind', 'partial'), 'malformed', 'kind'],
    ['a 31-byte basedOn', () => withField('basedOn', new Uint8Array(31)), 'malformed', 'basedOn'],
    ['a fractional time', () => withField('createdAt', 1.5), 'malformed', 'createdAt'],
    ['an unknown record tag', () => withRecords(Uint8Array.from([0x04, ...new Uint8Array(22)])), 'malformed', 'additions[0]'],
    ['a GAEN record cut short', () => withRecords(canonicalRecordBytes(tek(1)).subarray(0, 22)), 'malformed', 'additions[0]'],
    ['a TCN record without its length', () => withRecords(Uint8Array.from([0x03, 0x00])), 'malformed', 'additions[0]'],
    ['a TCN record longer than what is left', () => withRecords(canonicalRecordBytes(REPORT).subarray(0, 100)), 'malformed', 'additions[0]'],
    ['rolling period 0', () => withRecords(tekWith(21, 0)), 'malformed', 'additions[0]'],
    ['rolling period 145', () => withRecords(tekWith(21, 145)), 'malformed', 'additions[0]'],
    ['transmission risk 9', () => withRecords(tekWith(22, 9)), 'malformed', 'additions[0]'],
    ['a rolling start above 2^31 − 1', () => withRecords(tekWith(17, 0x80)), 'malformed', 'additions[0]'],
    ['a 133-byte TCN report', () => withRecords(Uint8Array.from([0x03, 0, 133, ...new Uint8Array(133)])), 'malformed', 'additions[0]'],
    ['a 390-byte TCN report', () => withRecords(Uint8Array.from([0x03, 1, 390 - 256, ...new Uint8Array(390)])), 'malformed', 'additions[0]'],
    ['a bad second record', () => withRecords(canonicalRecordBytes(tek(1)), Uint8Array.from([0x09])), 'malformed', 'additions[1]'],
    ['additions as a list of maps', () => withField('additions', [{ t: 'gaen-tek' }]), 'malformed', 'additions'],
    ['additions out of id order', () => withRecords(...sortedRecords().reverse()), 'bad-order', 'additions[1]'],
    ['a duplicate addition', () => withRecords(sortedRecords()[0]!, sortedRecords()[0]!), 'bad-order', 'additions[1]'],
    ['deletions of 33 bytes', () => withField('deletions', new Uint8Array(33)), 'malformed', 'deletions'],
    ['deletions out of order', () => withField('deletions', concat(ids[1]!, ids[0]!)), 'bad-order', 'deletions'],
    ['a duplicate deletion', () => withField('deletions', concat(ids[0]!, ids[0]!)), 'bad-order', 'deletions'],
    ['a full dump with deletions', () => withField('kind', 'full'), 'inconsistent', 'deletions'],
    ['a delta at seq 1 with a basedOn', () => withField('seq', 1), 'inconsistent', 'basedOn'],
    ['a delta after seq 1 without basedOn', () => withField('basedOn', undefined), 'inconsistent', 'basedOn'],
    ['an id both added and deleted', () => withField('deletions', Buffer.from(idOf(tek(1)), 'hex')), 'inconsistent', 'deletions'],
    ['a period ending before it starts', () => withField('periodStart', 1_800_000_000_001), 'inconsistent', 'periodEnd'],
    ['a list instead of a map', () => packWire([1, 2]), 'malformed', undefined],
    ['trailing bytes', () => concat(encodeDistributionFile(nodeSuite, base), new Uint8Array(1)), 'malformed', undefined],
    ['a msgpack extension (timestamp)', () => Uint8Array.from([0xd6, 0xff, 0, 0, 0, 1]), 'malformed', undefined],
  ] as const)('rejects %s: %s', (_what, make, reason, field) => {
    const v = decodeDistributionFile(nodeSuite, make());
    expect(v.ok).toBe(false);
    expect(!v.ok && { codec: v.codec, reason: v.reason, field: v.field }).toEqual({ codec: 'keyserver-distribution', reason, field });
  });

  it('bounds bytes, additions and deletions by the limits (too-large, too-many)', () => {
    const bytes = encodeDistributionFile(nodeSuite, base);
    expect(reasonOf(decodeDistributionFile(nodeSuite, bytes, { maxFileBytes: bytes.length - 1 }))).toBe('too-large');
    expect(reasonOf(decodeDistributionFile(nodeSuite, bytes, { maxAdditions: 2 }))).toBe('too-many');
    expect(reasonOf(decodeDistributionFile(nodeSuite, withField('deletions', concat(ids[0]!, ids[1]!)), { maxDeletions: 1 }))).toBe('too-many');
    expect(decodeDistributionFile(nodeSuite, bytes, { maxFileBytes: bytes.length, maxAdditions: 3, maxDeletions: 1 }).ok).toBe(true);
  });

  it('throws MisuseError naming the field for an invalid file (our bug, not data)', () => {
    const enc = (f: DistributionFile): unknown => encodeDistributionFile(nodeSuite, f);
    expect(misuseField(() => enc({ ...base, seq: 0 }))).toBe('file.seq');
    expect(misuseField(() => enc({ ...base, basedOn: 'AA'.repeat(32) }))).toBe('file.basedOn');
    expect(misuseField(() => enc({ ...base, additions: [tek(1), { ...tek(2), key: new Uint8Array(15) }] }))).toBe('file.additions[1].key');
    expect(misuseField(() => enc({ ...base, additions: [tek(1), SEED, tek(1)] }))).toMatch(/^file\.additions\[(0|2)\]$/);
    expect(misuseField(() => enc({ ...base, deletions: [NAME_A, NAME_A] }))).toBe('file.deletions');
    expect(misuseField(() => enc({ ...base, deletions: [idOf(SEED)] }))).toBe('file.deletions');
    expect(misuseField(() => enc({ ...base, kind: 'full' }))).toBe('file.deletions');
    expect(misuseField(() => enc({ ...base, basedOn: null }))).toBe('file.basedOn');
    expect(misuseField(() => enc({ ...base, periodEnd: 0 }))).toBe('file.periodEnd');
    expect(misuseField(() => encodeDistributionFile(nodeSuite, base, { maxFileBytes: 100 }))).toBe('file');
  });
});

// ------------------------------------------------------------ signed files

describe('signed, content-addressed files', () => {
  const file = delta(2, [tek(1), SEED], [NAME_B]);

  it.each(SUITES.flatMap(([s, signer]) => SUITES.map(([o, opener]) => [s, o, signer, opener] as const)))(
    'sign under %s → open under %s: the name is the SHA-256 of the bytes and the file comes back',
    (_s, _o, signer, opener) => {
      const signed = signDistributionFile(signer, SIGNING_KEY, KEY_ID, file);
      expect(signed.name).toBe(hex(nodeSuite.sha256(signed.bytes)));
      expect(valueOf(openDistributionFile(opener, KEYS, signed.name, signed.bytes))).toEqual(normalized(file));
    },
  );

  it('signs with low s under both suites, and noble (RFC 6979) gives the same name every time', () => {
    const sigOf = (bytes: Uint8Array): Uint8Array => (valueOf(unpackWire(bytes, 't')) as WireMap)['sig'] as Uint8Array;
    for (let i = 0; i < 20; i++) {
      const sig = sigOf(signDistributionFile(nodeSuite, SIGNING_KEY, KEY_ID, { ...file, createdAt: i }).bytes);
      expect(hex(lowSDer(sig)!)).toBe(hex(sig));
    }
    expect(signDistributionFile(nobleSuite, SIGNING_KEY, KEY_ID, file).name).toBe(signDistributionFile(nobleSuite, SIGNING_KEY, KEY_ID, file).name);
  });

  const signed = signDistributionFile(nodeSuite, SIGNING_KEY, KEY_ID, file);
  const body = encodeDistributionFile(nodeSuite, file);
  const bodyAt = Buffer.from(signed.bytes).indexOf(Buffer.from(body));
  const sig = (valueOf(unpackWire(signed.bytes, 't')) as WireMap)['sig'] as Uint8Array;
  const sigAt = signed.bytes.length - sig.length;

  it('every single-byte tamper fails with name-mismatch under the published name', () => {
    let tampered = 0;
    for (let at = 0; at < signed.bytes.length; at++) {
      for (let value = 0; value < 256; value++) {
        if (value === signed.bytes[at]) continue;
        const t = signed.bytes.slice();
        t[at] = value;
        expect(reasonOf(openDistributionFile(nodeSuite, KEYS, signed.name, t))).toBe('name-mismatch');
        tampered++;
      }
    }
    expect(tampered).toBe(signed.bytes.length * 255);
  });

  it('with the name recomputed, every single-byte tamper still fails: bad-signature in the body, a signature reason in sig, a typed reason elsewhere', () => {
    expect(bodyAt).toBeGreaterThan(0);
    const seen = new Map<string, number>();
    for (let at = 0; at < signed.bytes.length; at++) {
      for (const mask of [0x01, 0x80, 0xff]) {
        const t = signed.bytes.slice();
        t[at]! ^= mask;
        const v = openDistributionFile(nodeSuite, KEYS, hex(nodeSuite.sha256(t)), t);
        const reason = reasonOf(v);
        if (at >= bodyAt && at < bodyAt + body.length) expect(reason, `body byte ${at}`).toBe('bad-signature');
        else if (at >= sigAt) expect(['bad-signature', 'signature-encoding'], `sig byte ${at}`).toContain(reason);
        else expect(OPEN_REASONS.has(reason) && reason !== 'name-mismatch', `byte ${at}: ${reason}`).toBe(true);
        seen.set(reason, (seen.get(reason) ?? 0) + 1);
      }
    }
    for (const reason of ['bad-signature', 'signature-encoding', 'malformed', 'unknown-key']) expect(seen.get(reason) ?? 0, reason).toBeGreaterThan(0);
  });

  /** A container with any fields, signed (or not) as given. */
  const container = (fields: Record<string, WireValue>): { name: string; bytes: Uint8Array } => {
    const bytes = packWire({ v: 1, alg: 'ecdsa-p256-sha256', keyId: KEY_ID, body, sig, ...fields });
    return { name: hex(nodeSuite.sha256(bytes)), bytes };
  };
  const signOver = (message: Uint8Array, key = SIGNING_KEY): Uint8Array => lowSDer(nodeSuite.p256Sign(key, message))!;
  /** The same signature with s ↦ n − s: also valid ECDSA, but not the canonical (low-s) form. */
  const highS = (der: Uint8Array): Uint8Array => {
    const compact = derToCompact(der)!;
    let s = P256_ORDER - BigInt(`0x${hex(compact.subarray(32))}`);
    for (let i = 63; i >= 32; i--, s >>= 8n) compact[i] = Number(s & 0xffn);
    return compactToDer(compact);
  };

  it.each([
    ['an unknown key id', () => container({ keyId: 'ks-1999' }), 'unknown-key'],
    ['another public key under the key id', () => container({ sig: signOver(distributionSigningMessage(KEY_ID, body), OTHER_KEY) }), 'bad-signature'],
    ['a signature over the body alone (no domain separation)', () => container({ sig: signOver(body) }), 'bad-signature'],
    ['a signature made for another key id', () => container({ sig: signOver(distributionSigningMessage('ks-other', body)) }), 'bad-signature'],
    ['a high-s signature', () => container({ sig: highS(sig) }), 'signature-encoding'],
    ['a 64-byte r ‖ s signature', () => container({ sig: new Uint8Array(64).fill(1) }), 'signature-encoding'],
    ['another algorithm', () => container({ alg: 'ed25519' }), 'unsupported-algorithm'],
    ['container version 2', () => container({ v: 2 }), 'unsupported-version'],
    ['an extra container field', () => container({ note: 'x' }), 'malformed'],
    ['fields in another order', () => {
      const bytes = packWire({ keyId: KEY_ID, v: 1, alg: 'ecdsa-p256-sha256', body, sig });
      return { name: hex(nodeSuite.sha256(bytes)), bytes };
    }, 'non-canonical'],
    ['a valid container under a name that is not hex', () => ({ name: signed.name.toUpperCase(), bytes: signed.bytes }), 'name-mismatch'],
    ['more bytes than the cap', () => ({ name: signed.name, bytes: new Uint8Array(65 * 1024 * 1024) }), 'too-large'],
  ] as const)('refuses %s (%s)', (_what, make, reason) => {
    const { name, bytes } = make();
    const v = openDistributionFile(nodeSuite, KEYS, name, bytes);
    expect(v.ok).toBe(false);
    expect(!v.ok && { codec: v.codec, reason: v.reason }).toEqual({ codec: 'keyserver-distribution', reason });
  });

  it('the high-s case above really used a high-s signature that verifies', () => {
    const hs = highS(sig);
    expect(hex(lowSDer(hs)!)).not.toBe(hex(hs));
    expect(nodeSuite.p256Verify(KEYS.get(KEY_ID)!, distributionSigningMessage(KEY_ID, body), hs)).toBe(true);
  });

  it('throws MisuseError for a bad signing key, key id or public-key map', () => {
    expect(misuseField(() => signDistributionFile(nodeSuite, new Uint8Array(31), KEY_ID, file))).toBe('signingKey');
    expect(misuseField(() => signDistributionFile(nodeSuite, new Uint8Array(32), KEY_ID, file))).toBe('signingKey');
    expect(misuseField(() => signDistributionFile(nodeSuite, SIGNING_KEY, 'key/1', file))).toBe('keyId');
    expect(misuseField(() => openDistributionFile(nodeSuite, new Map([[KEY_ID, new Uint8Array(10)]]), signed.name, signed.bytes))).toBe(`publicKeys.${KEY_ID}`);
  });
});

// ------------------------------------------------------------ index codec

describe('distribution index codec', () => {
  it('round-trips every valid index, as bytes and as an envelope body (fast-check)', () => {
    fc.assert(
      fc.property(indexArb, (index) => {
        expect(valueOf(decodeDistributionIndex(encodeDistributionIndex(index)))).toEqual(index);
        expect(valueOf(distributionIndexCodec.decode(distributionIndexCodec.encode(index)))).toEqual(index);
      }),
      { numRuns: 200 },
    );
  });

  const good: DistributionIndex = { v: 1, latestFull: NAME_A, deltas: [NAME_B], seq: 5, publishedAt: 1_800_000_000_000 };
  const wire = (patch: Record<string, WireValue | undefined>): Uint8Array => {
    const w: Record<string, WireValue> = { ...(distributionIndexCodec.encode(good) as WireMap) };
    for (const [k, v] of Object.entries(patch)) {
      if (v === undefined) delete w[k];
      else w[k] = v;
    }
    return packWire(w);
  };
  it.each([
    ['version 2', () => wire({ v: 2 }), 'unsupported-version'],
    ['a 33-byte delta list', () => wire({ deltas: new Uint8Array(33) }), 'malformed'],
    ['a null latestFull (absent is how "none" is said)', () => wire({ latestFull: null }), 'malformed'],
    ['a negative seq', () => wire({ seq: -1 }), 'malformed'],
    ['an unknown field', () => wire({ extra: true }), 'malformed'],
    ['no full dump and fewer deltas than seq', () => wire({ latestFull: undefined }), 'inconsistent'],
    ['as many deltas as seq after a full dump', () => wire({ seq: 1 }), 'inconsistent'],
    ['a delta listed twice', () => wire({ deltas: Buffer.from(NAME_B + NAME_B, 'hex'), seq: 6 }), 'inconsistent'],
    ['the full dump listed as a delta', () => wire({ deltas: Buffer.from(NAME_A, 'hex') }), 'inconsistent'],
    ['more than MAX_INDEX_DELTAS deltas', () => wire({ deltas: new Uint8Array((MAX_INDEX_DELTAS + 1) * 32), seq: 10_000 }), 'too-many'],
    ['more bytes than any index', () => new Uint8Array(MAX_INDEX_DELTAS * 32 + 1024), 'too-large'],
  ] as const)('rejects %s (%s)', (_what, make, reason) => {
    const v = decodeDistributionIndex(make());
    expect(!v.ok && { codec: v.codec, reason: v.reason }).toEqual({ codec: 'keyserver-index', reason });
  });

  it('throws MisuseError naming the field for an inconsistent index', () => {
    expect(misuseField(() => encodeDistributionIndex({ ...good, seq: 1 }))).toBe('index.deltas');
    expect(misuseField(() => encodeDistributionIndex({ ...good, latestFull: 'x' }))).toBe('index.latestFull');
    expect(misuseField(() => encodeDistributionIndex({ ...good, deltas: [NAME_A] }))).toBe('index.deltas[0]');
  });
});

// ------------------------------------------------------------ model server and clients
