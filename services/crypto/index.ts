/**
 * Picks a crypto suite by name for composition roots (CLI flags, benches,
 * tests). Hot paths on Node default to node:crypto (DESIGN.md "Crypto
 * suite": ~30× faster AES, ~50× X25519); @noble stays available for parity
 * runs and for hosts without OpenSSL.
 */
import { MisuseError } from '../../protocol/errors.ts';
import { nobleSuite } from '../../protocol/crypto/noble.ts';
import type { CryptoSuite } from '../../protocol/crypto/suite.ts';
import { nodeSuite } from './node.ts';

export type CryptoSuiteName = 'noble' | 'node';

export const cryptoSuiteNames: readonly CryptoSuiteName[] = ['noble', 'node'];

export function cryptoSuiteByName(name: CryptoSuiteName): CryptoSuite {
  switch (name) {
    case 'noble':
      return nobleSuite;
    case 'node':
      return nodeSuite;
    default: {
      // Reached only from untyped callers (e.g. a CLI string cast to the union).
      const unknownName: never = name;
      throw new MisuseError('name', `unknown crypto suite ${String(unknownName)}; expected one of ${cryptoSuiteNames.join(', ')}`);
    }
  }
}

export const defaultCryptoSuite: CryptoSuite = nodeSuite;

export { nobleSuite, nodeSuite };
