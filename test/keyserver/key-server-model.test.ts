/**
 * The key-server machine (actors/key-server/) against a reference model
 * (test/support/key-server-model.ts, driven by key-server-model-run.ts):
 * random command sequences — providers added and revoked (prospectively or
 * retroactively since a random instant), codes registered, uploads with
 * fresh, unknown, retried and reused codes, keys shared between uploads,
 * repeated within one and past retention, withdrawals, status queries and
 * publish ticks over simulated days — and after every step:
 *   - the ledger's live records (id → references, expiry) equal the model's;
 *   - every upload's status (accepted / withdrawn / expired / rejected with
 *     its reason / unknown once forgotten) and every admin result equal the
 *     model's;
 *   - the ledger's invariants hold (test/support/key-server-arbitraries.ts);
 *   - after each tick, a client that followed every announcement (verifying
 *     names and signatures) holds exactly the live set.
 * Then the run's journal (every input, in order) replayed into a fresh
 * machine gives the same state digest (ledger.ts `stateDigest`), the same
 * effects (tracking ids, file names and bytes) and the same digest through
 * `keys.server.state`.
 *
 * The model is the documented behaviour (module headers of submissions.ts,
 * admin.ts, publication.ts, ledger.ts), not a copy of the code. The sequences
 * reach the cases of the four bugs it found (key-server-model-bugs.test.ts,
 * now fixed), and the coverage list at the end checks that they do:
 *   - a TCN report's content does not depend on when it is uploaded
 *     (`tcnReport`), so the same report comes back after it expired — `echo`
 *     uploads carry again what an earlier upload carried — and a withdrawal
 *     may then pick (`lost`) the first upload, which no longer holds it;
 *   - a `late` tick lands anywhere, mostly off a period boundary (`aim`: just
 *     after a TCN report expired, before the next boundary);
 *   - an upload may name a record twice (`cmdArb`) and carry records past
 *     retention (`recordRefArb`: up to 4 days back, the retention is 3);
 *     capacity counts a repeated record once and a stale one not at all.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { stateDigest } from '../../actors/key-server/ledger.ts';
import type { AdminResult } from '../../protocol/keyserver/messages.ts';
import { nodeSuite } from '../../services/crypto/node.ts';
import { DAY, replyBody } from '../support/key-server-fixtures.ts';
import { cmdArb, RETENTION } from '../support/key-server-model.ts';
import { replay, Run } from '../support/key-server-model-run.ts';

describe('key server against a reference model (issue 4)', () => {
  const RUNS = 120;
  it(`${RUNS} random sequences of 30–80 commands over simulated days: live records, statuses, admin results and a following client match the model after every step; a replayed journal gives the same digest`, () => {
    const totals = new Map<string, number>();
    let commands = 0;
    let ticks = 0;
    /** Fresh clients that started from a full dump (coverage). */
    let fullStarts = 0;
    fc.assert(
      fc.property(fc.array(cmdArb, { minLength: 30, maxLength: 80 }), (cmds) => {
        const run = new Run();
        // Every run starts with one provider and a few codes, so uploads have something to redeem.
        run.exec({ k: 'add', p: 0 });
        run.exec({ k: 'register', p: 0, codes: [0, 1, 2].map((i) => nodeSuite.sha256(Uint8Array.of(i, cmds.length)).slice(0, 10)), lifetime: 'day', dup: false });
        for (const cmd of cmds) {
          run.exec(cmd);
          run.check();
        }
        // Run out the clock past every retention: everything expires and the client follows to empty.
        run.exec({ k: 'wait', ms: RETENTION + 2 * DAY });
        run.check();
        expect(run.model.live.size).toBe(0);
        expect(run.follower.keys()).toEqual([]);
        commands += cmds.length;
        ticks += run.ticks;
        fullStarts += run.fullStarts;
        for (const [k, v] of run.outcomes) totals.set(k, (totals.get(k) ?? 0) + v);

        // Determinism: the journal replayed into a fresh machine re-creates state, ids and files.
        const again = replay(run.journal);
        const digest = stateDigest(nodeSuite, run.ks.context.ledger);
        expect(stateDigest(nodeSuite, again.driver.context.ledger)).toBe(digest);
        expect(again.effects).toEqual(run.effects);
        const viaMessage = replyBody<AdminResult>(again.driver.msg('keys.server.state', {}, run.now, 'operator/op'), 'keys.admin.result');
        expect(viaMessage.stateDigest).toBe(digest);
      }),
      { numRuns: RUNS, seed: 4_200_001 },
    );
    expect(commands).toBeGreaterThan(RUNS * 30);
    expect(ticks).toBeGreaterThan(RUNS * 10);
    expect(fullStarts).toBeGreaterThan(0); // fresh clients started from a full dump
    // The sequences reach every outcome the model knows.
    for (const outcome of [
      'upload accepted',
      'upload accepted (tcn)',
      'upload retry',
      'upload chaff',
      'upload malformed',
      'upload unknown-code',
      'upload used',
      'upload expired',
      'upload provider-revoked',
      'upload future-key',
      'upload bad-tcn-signature',
      'upload capacity',
      'withdraw ok',
      'withdraw unknown-upload',
      'withdraw not-accepted',
      'status accepted',
      'status withdrawn',
      'status expired',
      'status rejected',
      'status unknown',
      'register ok',
      'register duplicate-code',
      'register too-long',
      'revoke retroactive withdrew',
      'revoke prospective',
      // The cases of the bugs the model found (key-server-model-bugs.test.ts).
      'withdraw leaves a record re-uploaded after expiry',
      'late tick sweeps what expired since the boundary',
      'upload accepted (a record repeated)',
      'upload accepted (stale records skipped)',
      'upload accepted near capacity (repeats and stale records not counted)',
    ]) {
      expect([...totals.keys()], outcome).toContain(outcome);
    }
  }, 60_000);
});
