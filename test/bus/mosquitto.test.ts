/**
 * MqttBus against a real mosquitto (spawned per suite by test/support/mosquitto.ts).
 * Skipped, saying why, when the mosquitto binary is not installed; CI installs it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { connectMqttBus, type MqttBus } from '../../services/bus/mqtt.ts';
import { busContract, waitFor } from '../contract/bus.contract.ts';
import { mosquittoSkipReason, startMosquitto, type MosquittoOptions, type RunningMosquitto } from '../support/mosquitto.ts';

if (mosquittoSkipReason !== undefined) console.warn(`[test/bus/mosquitto] skipped: ${mosquittoSkipReason}`);
// CI installs mosquitto (.ci/run): there a missing binary must fail, not skip.
const skip = mosquittoSkipReason !== undefined && process.env['CI'] === undefined;
const b = (s: string): Uint8Array => new TextEncoder().encode(s);

const fixture = (options: MosquittoOptions) => async () => {
  const broker = await startMosquitto(options);
  return {
    connect: (clientId: string) => connectMqttBus({ url: broker.url, clientId, onError: () => undefined }),
    teardown: () => broker.stop(),
  };
};

describe.skipIf(skip)(skip ? `mosquitto — skipped: ${mosquittoSkipReason ?? ''}` : 'mosquitto', () => {
  busContract('MqttBus on mosquitto', fixture({}));
  // one copy per matching subscription: exercises the bus's copy-swallowing path
  busContract('MqttBus on mosquitto with allow_duplicate_messages true', fixture({ allowDuplicateMessages: true }));

  describe('MqttBus + mosquitto specifics', () => {
    const cleanup: (() => Promise<void>)[] = [];
    afterEach(async () => {
      for (const step of cleanup.splice(0).reverse()) await step();
    });
    const mosquitto = async (options: MosquittoOptions = {}): Promise<RunningMosquitto> => {
      const started = await startMosquitto(options);
      cleanup.push(() => started.stop());
      return started;
    };
    const bus = async (url: string, clientId: string, reconnectPeriodMs = 1000): Promise<MqttBus> => {
      const opened = await connectMqttBus({ url, clientId, reconnectPeriodMs, onError: () => undefined });
      cleanup.push(() => opened.close());
      return opened;
    };

    it('probes how overlapping subscriptions are delivered', async () => {
      expect((await bus((await mosquitto()).url, 'single')).overlapMode).toBe('single');
      expect((await bus((await mosquitto({ allowDuplicateMessages: true })).url, 'dup')).overlapMode).toBe('per-subscription');
    });

    it('swallows the extra copies mosquitto sends for overlapping filters', async () => {
      const { url } = await mosquitto({ allowDuplicateMessages: true });
      const [pub, sub] = [await bus(url, 'pub'), await bus(url, 'sub')];
      const got: string[] = [];
      for (const filter of ['t/d/#', 't/d/+', 't/+/x', 't/d/x']) await sub.subscribe(filter, (_t, p) => got.push(new TextDecoder().decode(p)));
      for (let i = 0; i < 20; i++) await pub.publish('t/d/x', b(i % 3 === 0 ? 'same' : `m${i}`), { qos: (i % 2) as 0 | 1 });
      await pub.publish('t/d/x', b('end'));
      await waitFor(() => got.filter((m) => m === 'end').length === 4);
      expect(got).toHaveLength(21 * 4);
      expect(sub.stats.duplicatesDropped).toBe(21 * 3);
    });

    it('keeps subscriptions across a mosquitto restart on the same port', async () => {
      const first = await startMosquitto();
      const sub = await bus(first.url, 'survivor', 50);
      const got: string[] = [];
      await sub.subscribe('t/restart/+', (_t, p) => got.push(new TextDecoder().decode(p)), { qos: 1 });
      await first.stop();
      const second = await mosquitto({ port: first.port });
      const pub = await bus(second.url, 'publisher');
      for (let i = 0; got.length === 0 && i < 200; i++) {
        await pub.publish('t/restart/x', b(`probe${i}`), { qos: 1 });
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      await pub.publish('t/restart/x', b('after'), { qos: 1 });
      await waitFor(() => got.includes('after'));
      await sub.publish('t/restart/y', b('own'));
      await sub.idle();
      expect(got.at(-1)).toBe('own');
    });
  });
});
