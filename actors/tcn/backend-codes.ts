/**
 * One-time codes at the TCN backend. The health authority issues printed codes
 * (protocol/keyserver/upload-code.ts) and the backend is given them at start; it keeps only
 * HMAC-SHA-256(pepper, label ‖ code) (uploadCodeDigest) — the pepper is a dependency, never
 * context, so a snapshot or a leaked table reveals no code — and finds a presented code by
 * comparing its digest with every stored digest in constant time (protocol/crypto/ct.ts), the
 * whole table every time, so the time does not depend on which entry matched.
 *
 * A code authorizes one upload: a report upload (mode A; `use` = SHA-256 of its reports, so the
 * same upload re-sent is acknowledged again) or one log (mode B; bound to the uploader and the
 * part count, each part accepted once).
 */
import { constantTimeEqual } from '../../protocol/crypto/ct.ts';
import type { CryptoSuite } from '../../protocol/crypto/suite.ts';
import { ensure } from '../../protocol/errors.ts';
import { parseUploadCode, uploadCodeDigest, UPLOAD_CODE_PEPPER_MIN_BYTES, type UploadCode } from '../../protocol/keyserver/upload-code.ts';
import type { SimMillis } from '../ports.ts';

/** A mode-B log a code authorized. */
export interface CodeLog {
  readonly logId: number;
  /** Actor id of the phone that uploads it. */
  readonly uploader: string;
  readonly parts: number;
  readonly received: readonly boolean[];
}

export interface CodeEntry {
  readonly digest: Uint8Array;
  readonly usedAt: SimMillis | null;
  /** Mode A: hex SHA-256 of the reports it authorized. */
  readonly reportsHash: string | null;
  /** Mode B: the log it authorized. */
  readonly log: CodeLog | null;
}

/** Closed over by the machine, never in context. */
export interface TcnBackendDeps {
  readonly crypto: CryptoSuite;
  /** Pepper of the code digests, ≥ 32 bytes (the city draws it from its DRBG). */
  readonly pepper: Uint8Array;
}

export function checkTcnBackendDeps(deps: TcnBackendDeps): void {
  ensure(typeof deps === 'object' && deps !== null && typeof deps.crypto === 'object', 'deps.crypto', 'must be a CryptoSuite');
  ensure(deps.pepper instanceof Uint8Array && deps.pepper.length >= UPLOAD_CODE_PEPPER_MIN_BYTES, 'deps.pepper', `must be at least ${UPLOAD_CODE_PEPPER_MIN_BYTES} bytes`);
}

/** Digests of the issued codes (printed forms; a malformed one is the caller's bug: MisuseError). */
export function codeEntries(deps: TcnBackendDeps, printed: readonly string[]): CodeEntry[] {
  ensure(Array.isArray(printed), 'input.codes', 'must be an array of printed codes');
  return printed.map((text, i) => {
    const code = parseUploadCode(text);
    ensure(code.ok, `input.codes[${i}]`, code.ok ? '' : `${code.reason}: ${code.detail}`);
    return { digest: uploadCodeDigest(deps.crypto, code.value, deps.pepper), usedAt: null, reportsHash: null, log: null };
  });
}

/** Index of the entry holding `code`'s digest, or −1; every digest is compared in full. */
export function findCode(deps: TcnBackendDeps, codes: readonly CodeEntry[], code: UploadCode): number {
  const digest = uploadCodeDigest(deps.crypto, code, deps.pepper);
  let found = -1;
  for (let i = 0; i < codes.length; i++) {
    const equal = constantTimeEqual((codes[i] as CodeEntry).digest, digest);
    // Branch-free selection of the first match: no early exit.
    found += Number(equal && found < 0) * (i + 1);
  }
  return found;
}

export function hex(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) out += b.toString(16).padStart(2, '0');
  return out;
}
