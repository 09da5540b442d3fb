/**
 * GAEN key export (SPECS §1.7): the sample exports parse and verify under both
 * crypto suites; tampering anywhere is caught with a clear reason.
 */
import { describe, expect, it } from 'vitest';
import { encodeExportBin, encodeExportSig } from '../../protocol/keyserver/gaen-export-codec.ts';
import { writeExportZip } from '../../protocol/keyserver/gaen-export-zip.ts';
import { compactToDer, derToCompact, ECDSA_P256_SHA256_OID, parseExportZip, verifyExport } from '../../protocol/keyserver/gaen-export.ts';
import { nodeSuite } from '../../services/crypto/node.ts';
import vectors from '../vectors/gaen-export.json' with { type: 'json' };
import {
  centralDirectoryTotal,
  hex,
  unhex,
  reasonOf,
  SUITES,
  REASONS,
  CASES,
  goStyleZip,
  parsed,
  check,
  type VectorKey,
} from '../support/gaen-export-fixtures.ts';

describe('SPECS §1.7 sample exports (test/vectors/gaen-export.json)', () => {
  it('the PEM keys load as the vector file\'s uncompressed points (services/cli p256PublicKeyFromPem)', () => {
    expect(hex(CASES[0]!.publicKey)).toBe(vectors.cases[0]!.public_key_uncompressed_hex);
    expect(CASES[1]!.publicKey).toHaveLength(65);
  });

  describe.each(CASES)('$name', (c) => {
    it.each(SUITES)('parses and verifies under %s, in our zip and in a Go-style zip with data descriptors', (_name, suite) => {
      for (const zip of [writeExportZip(c.bin, c.sig), goStyleZip(c.bin, c.sig), goStyleZip(c.bin, c.sig, true)]) {
        const v = verifyExport(suite, parsed(zip), c.publicKey);
        expect(v.ok && v.value.signature.signatureInfo).toEqual({ verificationKeyId: c.keyId, verificationKeyVersion: c.keyVersion, signatureAlgorithm: ECDSA_P256_SHA256_OID });
      }
    });

    it('gives the decoded keys of the vector file (absent rolling_period = 144, SPECS §7.5)', () => {
      const p = parsed(writeExportZip(c.bin, c.sig));
      const expected = (c.decoded.keys as readonly VectorKey[]).map((k) => ({
        keyData: unhex(k.key_data),
        transmissionRiskLevel: k.transmission_risk_level,
        rollingStartIntervalNumber: k.rolling_start_interval_number,
        rollingPeriod: k.rolling_period ?? 144,
      }));
      expect(p.keys).toEqual(expected);
      expect(p.revisedKeys).toEqual([]);
      expect(p).toMatchObject({ startTimestamp: c.decoded.start_timestamp, endTimestamp: c.decoded.end_timestamp, region: c.decoded.region, batchNum: c.decoded.batch_num, batchSize: c.decoded.batch_size });
      expect(p.signatureInfos).toEqual(c.decoded.signature_infos.map((i) => ({ verificationKeyVersion: i.verification_key_version, verificationKeyId: i.verification_key_id, signatureAlgorithm: i.signature_algorithm })));
      expect(p.signatures.map((s) => hex(s.signature))).toEqual([hex(c.der)]);
      expect(p.exportBin).toEqual(c.bin);
    });

    it('re-encodes export.bin and export.sig byte for byte (EN-server field presence: TR always, start unless 0, period unless 144)', () => {
      const p = parsed(writeExportZip(c.bin, c.sig));
      expect(hex(encodeExportBin(p))).toBe(hex(c.bin));
      expect(hex(encodeExportSig(p.signatures))).toBe(hex(c.sig));
    });

    it('DER ⇄ r‖s round-trips the sample signature', () => {
      const compact = derToCompact(c.der);
      expect(compact).toHaveLength(64);
      expect(hex(compactToDer(compact!))).toBe(hex(c.der));
    });

    it('selects signatures by key id and version; another key is no-signature-for-key', () => {
      const p = parsed(writeExportZip(c.bin, c.sig));
      expect(verifyExport(nodeSuite, p, c.publicKey, { keyId: c.keyId, keyVersion: c.keyVersion }).ok).toBe(true);
      expect(reasonOf(verifyExport(nodeSuite, p, c.publicKey, { keyId: 'other' }))).toBe('no-signature-for-key');
      expect(reasonOf(verifyExport(nodeSuite, p, c.publicKey, { keyVersion: 'v999' }))).toBe('no-signature-for-key');
    });
  });

  it.each(SUITES)('a sample verified with the other sample\'s key is bad-signature (%s)', (_name, suite) => {
    const [a, b] = CASES as [(typeof CASES)[number], (typeof CASES)[number]];
    expect(reasonOf(verifyExport(suite, parsed(writeExportZip(a.bin, a.sig)), b.publicKey))).toBe('bad-signature');
  });
});

// ------------------------------------------------------------ tampering

describe('tampering (SPECS §1.7: the signature covers all of export.bin)', () => {
  const c = CASES[0]!;

  it('a changed byte anywhere in export.bin is rejected; inside key_data it is bad-signature', () => {
    const seen = new Set<string>();
    for (let i = 0; i < c.bin.length; i++) {
      for (const x of [0x01, 0x80, 0xff]) {
        const bin = c.bin.slice();
        bin[i]! ^= x;
        const v = check(writeExportZip(bin, c.sig), c.publicKey);
        expect(v.ok, `byte ${i} ^ ${x}`).toBe(false);
        seen.add(reasonOf(v));
      }
    }
    const keyByte = hex(c.bin).indexOf('172fc480') / 2 + 3;
    const bin = c.bin.slice();
    bin[keyByte]! ^= 0x01;
    expect(check(writeExportZip(bin, c.sig), c.publicKey)).toMatchObject({ ok: false, reason: 'bad-signature', field: 'signatures[0].signature' });
    expect([...seen].every((r) => REASONS.has(r))).toBe(true);
    expect(seen).toContain('header');
  });

  it('a sample of changed bytes in the 140-key export.bin is rejected too', () => {
    const big = CASES[1]!;
    for (let i = 0; i < big.bin.length; i += 13) {
      const bin = big.bin.slice();
      bin[i]! ^= 0x20;
      expect(check(writeExportZip(bin, big.sig), big.publicKey).ok, `byte ${i}`).toBe(false);
    }
  });

  it('a changed byte anywhere in export.sig is rejected (DER → signature-encoding or bad-signature, key id → signature-info-mismatch)', () => {
    const derAt = hex(c.sig).indexOf(hex(c.der)) / 2;
    for (let i = 0; i < c.sig.length; i++) {
      for (const x of [0x01, 0x80, 0xff]) {
        const sig = c.sig.slice();
        sig[i]! ^= x;
        const v = check(writeExportZip(c.bin, sig), c.publicKey);
        expect(v.ok, `byte ${i} ^ ${x}`).toBe(false);
        if (i >= derAt) expect(['signature-encoding', 'bad-signature']).toContain(reasonOf(v));
      }
    }
    const sig = c.sig.slice();
    sig[hex(c.sig).indexOf(hex(new TextEncoder().encode('some_id'))) / 2]! ^= 0x01;
    expect(check(writeExportZip(c.bin, sig), c.publicKey)).toMatchObject({ reason: 'signature-info-mismatch' });
    const last = c.sig.slice();
    last[last.length - 1]! ^= 0x01;
    expect(check(writeExportZip(c.bin, last), c.publicKey)).toMatchObject({ reason: 'bad-signature' });
  });

  const zip = writeExportZip(c.bin, c.sig);
  const at = (needle: Uint8Array | string, from = 0): number => Buffer.from(zip).indexOf(typeof needle === 'string' ? Buffer.from(needle) : Buffer.from(needle), from);
  const eocd = at(unhex('504b0506'));
  const central = at(unhex('504b0102'));
  const flip = (i: number, x = 0x01): Uint8Array => {
    const t = zip.slice();
    t[i]! ^= x;
    return t;
  };
  it.each([
    ['the end-of-central-directory signature', () => flip(eocd), /no end-of-central-directory/],
    ['the entry count', () => centralDirectoryTotal(zip, 3), /expected exactly 2 entries/],
    ['a central directory entry name', () => flip(at('export.bin', central)), /unexpected entry "dxport\.bin"/],
    ['the central CRC-32 of export.bin', () => flip(central + 16), /local and central CRC or sizes differ/],
    ['the local header signature', () => flip(0), /no local header/],
    ['export.bin\'s deflated data', () => flip(30 + 10 + 20), /export\.bin:? (corrupt deflate data|inflates to|CRC-32 mismatch)/],
    ['export.bin\'s declared size (central and local)', () => {
      const t = zip.slice();
      t[central + 24]! += 1;
      t[22]! += 1;
      return t;
    }, /inflates to 135 bytes, its header declares 136/],
  ] as const)('a changed byte in %s is a zip rejection naming it', (_what, make, detail) => {
    const v = check(make(), c.publicKey);
    expect(v.ok).toBe(false);
    expect(!v.ok && v.reason).toBe('zip');
    expect(!v.ok && v.detail).toMatch(detail);
  });

  it('any changed byte of the container is rejected or leaves export.bin and export.sig unchanged (only unsigned metadata: times, versions)', () => {
    for (let i = 0; i < zip.length; i++) {
      for (const x of [0x01, 0x80, 0xff]) {
        const p = parseExportZip(flip(i, x));
        if (!p.ok) {
          expect(['zip', 'too-large']).toContain(p.reason);
          continue;
        }
        expect(hex(p.value.exportBin), `byte ${i}`).toBe(hex(c.bin));
        expect(hex(p.value.exportSig), `byte ${i}`).toBe(hex(c.sig));
      }
    }
  });
});

// ------------------------------------------------------------ build → parse → verify
