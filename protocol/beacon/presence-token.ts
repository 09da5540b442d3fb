/**
 * The SmartBeacon presence token (quarantine extension, issue 3): every
 * beacon period the beacon broadcasts a Fernet token whose message is the
 * token's own timestamp as decimal ASCII text (seed design: "AES-128-CBC of
 * the PKCS#7-padded timestamp text"), keyed with SK_beacon (signing half ‖
 * encryption half). A phone relays it; the app backend verifies it to learn
 * that the phone was near its household's beacon at that time.
 *
 * Raw token bytes travel over the air (73 bytes: a 10-digit timestamp pads
 * to one AES block); the base64url text form is for logs and the CLI.
 */
import type { CryptoSuite } from '../crypto/suite.ts';
import { accept, reject, type Verdict } from '../errors.ts';
import { createFernetToken, verifyFernetToken, type FernetKey } from './fernet.ts';

const CODEC = 'presence-token';
const ASCII_ZERO = 0x30;

/** The message of a presence token: canonical decimal text of `timestamp` (no sign, no leading zeros). */
export function presenceMessage(timestamp: number): Uint8Array {
  const text = String(timestamp);
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
  return out;
}

/** True iff `message` is exactly the canonical decimal text of `timestamp`, compared without allocating. */
function isPresenceMessage(message: Uint8Array, timestamp: number): boolean {
  let rest = timestamp;
  for (let i = message.length - 1; i >= 0; i--) {
    if (message[i] !== ASCII_ZERO + (rest % 10)) return false;
    rest = Math.floor(rest / 10);
    // A leading zero is only canonical for the number 0 itself.
    if (rest === 0) return i === 0;
  }
  return false;
}

/**
 * The raw presence token for the beacon period starting at `now` (Unix s).
 * `iv`: 16 bytes, unique per token — from the seeded Rng in simulation.
 */
export function createPresenceToken(suite: CryptoSuite, key: FernetKey, now: number, iv: Uint8Array): Uint8Array {
  return createFernetToken(suite, key, { now, iv, message: presenceMessage(now) });
}

export interface PresenceVerifyOptions {
  /** Verifier's clock, Unix seconds. */
  readonly now: number;
  /**
   * Maximum token age in seconds. Required (unlike plain Fernet): a presence
   * token without an age bound would prove presence at any time.
   */
  readonly ttlS: number;
}

/**
 * Verify a presence token (raw bytes or base64url text): every Fernet check
 * (codec `fernet`, see fernet.ts for the reasons and their order), then
 * `bad-message` (codec `presence-token`) when the decrypted message is not
 * the canonical decimal text of the token's timestamp — a token minted by a
 * holder of the key for some other purpose is not a presence token.
 */
export function verifyPresenceToken(
  suite: CryptoSuite,
  key: FernetKey,
  token: Uint8Array | string,
  options: PresenceVerifyOptions,
): Verdict<{ readonly timestamp: number }> {
  const verdict = verifyFernetToken(suite, key, token, { now: options.now, ttlS: options.ttlS });
  if (!verdict.ok) return verdict;
  const { message, timestamp } = verdict.value;
  if (!isPresenceMessage(message, timestamp)) {
    return reject(CODEC, 'bad-message', `message of ${message.length} bytes is not the decimal text of timestamp ${timestamp}`);
  }
  return accept({ timestamp });
}
