/**
 * The privacy split of the seed design, checked on the *stored* data of a
 * run (DESIGN.md "Security profiles"): the app backend's journal and
 * snapshots hold no address and no identity; the police backend's hold no
 * phone key (SK_DP3T) and no beacon key.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { householdSecrets, quarantineProtocolSchema } from '../../services/city/quarantine/actors.ts';
import { quarantineCitySchema } from '../../services/city/quarantine/plan.ts';
import { runQuarantineCity } from '../../services/city/quarantine/run.ts';
import { seedBytes } from '../../services/city/demo-scenario.ts';
import { nodeSuite } from '../../services/crypto/node.ts';
import { silentLogger } from '../../services/log.ts';
import { SqliteStore, openSqliteStore } from '../../services/store/sqlite.ts';

/**
 * Keeps a copy of every record appended: journals are compacted once a
 * snapshot covers them, so by the end of the run most journal records are
 * gone from the store, but they were on disk and must pass the check too.
 */
class RecordingStore extends SqliteStore {
  readonly appended = new Map<string, Uint8Array[]>();
  override append(stream: string, record: Uint8Array): Promise<number> {
    const list = this.appended.get(stream) ?? [];
    list.push(new Uint8Array(record));
    this.appended.set(stream, list);
    return super.append(stream, record);
  }
}

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

function contains(haystack: Uint8Array, needle: Uint8Array): boolean {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return true;
  }
  return false;
}

describe('privacy split on the stored data (SQLite journal + snapshots)', () => {
  it('app backend stores no address; police backend stores no phone or beacon key', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tc-privacy-'));
    dirs.push(dir);
    const path = join(dir, 'backends.db');
    const store = new RecordingStore(path);
    const city = quarantineCitySchema.parse({ households: 4, days: 0.25, violatorFraction: 1, violationsPerDay: 4, seed: 9 });
    const summary = await runQuarantineCity({ city, protocol: quarantineProtocolSchema.parse({}), bus: { kind: 'memory' }, store, crypto: nodeSuite, logger: silentLogger });
    expect(summary.score.alerts).toBeGreaterThan(0); // alerts crossed from the app backend to the police
    await store.close();

    const reopened = await openSqliteStore(path);
    const recordsOf = async (address: string): Promise<Uint8Array[]> => {
      const stream = `journal/${address}`;
      const journal = [...(store.appended.get(stream) ?? []), ...(await reopened.read(stream)).map((r) => r.record)];
      const snapshot = await reopened.get(`actor-snapshot/${address}`);
      return snapshot === undefined ? journal : [...journal, snapshot];
    };
    const app = await recordsOf('app-backend/ab');
    const police = await recordsOf('police-backend/police');
    expect(app.length).toBeGreaterThan(10);
    expect(police.length).toBeGreaterThan(4);

    const text = new TextEncoder();
    // Addresses exist only at the police: the officer registered "House <n>, Quarantine Street".
    expect(police.some((r) => contains(r, text.encode('Quarantine Street')))).toBe(true);
    for (const r of app) expect(contains(r, text.encode('Quarantine Street'))).toBe(false);

    // Keys exist only at the app backend.
    const seed = seedBytes(9);
    for (let i = 0; i < 4; i++) {
      const { sk, beaconKey } = householdSecrets(seed, i);
      expect(app.some((r) => contains(r, sk))).toBe(true);
      for (const r of police) {
        expect(contains(r, sk)).toBe(false);
        expect(contains(r, beaconKey)).toBe(false);
      }
    }
    await reopened.close();
  }, 60_000);
});
