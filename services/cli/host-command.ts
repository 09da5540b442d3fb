/**
 * `tracecity host`: run a set of the demo's actors in this process against
 * any MQTT broker, in wall × speed time, with the simulated air carried over
 * the broker (mode 2 of DESIGN.md). Several hosts share one run through the
 * retained epoch message and the air topics.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { InvalidArgumentError, type Command } from 'commander';
import type { Logger } from '../../actors/ports.ts';
import type { DemoBeaconContext } from '../../actors/demo/beacon.ts';
import type { DemoCollectorContext } from '../../actors/demo/collector.ts';
import type { DemoPhoneContext } from '../../actors/demo/phone.ts';
import { SeededRng } from '../../protocol/crypto/drbg.ts';
import type { Epoch } from '../../protocol/wire/epoch.ts';
import { BusAir } from '../../hardware/sim/bus-medium.ts';
import { openBus } from '../bus/open.ts';
import { beaconSpec, collectorSpec, demoMessages, demoScenarioSchema, phoneSpec, positionOf, seedBytes, type DemoScenario } from '../city/demo-scenario.ts';
import { Host, type ActorSpec } from '../host/host.ts';
import { createLogger } from '../log.ts';
import { EpochTimeoutError, WallScheduler, awaitEpoch, publishEpoch } from '../time/wall.ts';
import { brokerUrlFlag, defined, intFlag, numberFlag, parseConfig } from './options.ts';
import { onShutdown } from './shutdown.ts';

interface HostFlags {
  broker: string;
  actors: ActorSelection[];
  name?: string;
  seed?: number;
  households?: number;
  phonesPerHousehold?: number;
  speed: number;
  duration?: number;
  newEpoch?: boolean;
  beaconPeriod?: number;
  scanWindow?: number;
  scanPeriod?: number;
  reportPeriod?: number;
  logLevel: string;
}

/** `collector`, `beacon:3`, `beacon:0-4`, `phone:2-5` (household ranges). */
export interface ActorSelection {
  readonly role: 'collector' | 'beacon' | 'phone';
  readonly from: number;
  readonly to: number;
}

export function parseActorSpec(value: string): ActorSelection[] {
  const out: ActorSelection[] = [];
  for (const item of value.split(',').map((s) => s.trim()).filter((s) => s !== '')) {
    const m = /^(collector|beacon|phone)(?::(\d+)(?:-(\d+))?)?$/.exec(item);
    if (m === null) throw new InvalidArgumentError(`--actors: ${JSON.stringify(item)} is not collector, beacon:N[-M] or phone:N[-M]`);
    const role = m[1] as ActorSelection['role'];
    if (role !== 'collector' && m[2] === undefined) throw new InvalidArgumentError(`--actors: ${role} needs a household range, e.g. ${role}:0-3`);
    const from = Number(m[2] ?? 0);
    const to = Number(m[3] ?? m[2] ?? 0);
    if (to < from) throw new InvalidArgumentError(`--actors: empty range in ${JSON.stringify(item)}`);
    out.push({ role, from, to });
  }
  if (out.length === 0) throw new InvalidArgumentError('--actors: no actors given');
  return out;
}

export function selectedSpecs(s: DemoScenario, selections: readonly ActorSelection[]): ActorSpec[] {
  const specs: ActorSpec[] = [];
  for (const sel of selections) {
    if (sel.role === 'collector') specs.push(collectorSpec(s));
    for (let h = sel.from; sel.role !== 'collector' && h <= sel.to; h++) {
      if (h >= s.households) throw new InvalidArgumentError(`--actors: household ${h} is outside --households ${s.households}`);
      if (sel.role === 'beacon') specs.push(beaconSpec(s, h));
      else for (let k = 0; k < s.phonesPerHousehold; k++) specs.push(phoneSpec(s, h, k));
    }
  }
  return specs;
}

/** Join the run's epoch, or start one when none is retained yet (or --new-epoch). */
async function agreeOnEpoch(bus: Parameters<typeof awaitEpoch>[0], speed: number, fresh: boolean, logger: Logger): Promise<Epoch> {
  if (!fresh) {
    try {
      const epoch = await awaitEpoch(bus, 1000, (reason) => logger.warn('rejected epoch message', { reason }));
      if (epoch.speed !== speed) logger.warn('joined an epoch with another speed', { epochSpeed: epoch.speed, requested: speed });
      return epoch;
    } catch (err) {
      if (!(err instanceof EpochTimeoutError)) throw err;
    }
  }
  const now = Date.now();
  await publishEpoch(bus, { t0: now, wall0: now, speed });
  // Two hosts may race to publish: adopt whatever the broker retained last.
  await sleep(100);
  return awaitEpoch(bus, 5000);
}

function reportOf(host: Host, spec: ActorSpec): unknown {
  const context: unknown = host.snapshotOf(spec.role, spec.id).context;
  switch (spec.role) {
    case 'beacon':
      return { framesBuilt: (context as DemoBeaconContext).seq };
    case 'phone':
      return (context as DemoPhoneContext).counters;
    case 'collector': {
      const c = context as DemoCollectorContext;
      return { reports: c.reports, framesHeard: c.framesHeard, beaconsHeard: Object.keys(c.heardBy).length, heardBy: c.heardBy };
    }
    default:
      return {};
  }
}

export function registerHost(program: Command): void {
  program
    .command('host')
    .description('run some of the demo actors in this process against an MQTT broker (wall × speed time, air over MQTT)')
    .requiredOption('--broker <url>', 'MQTT broker URL, e.g. mqtt://127.0.0.1:1883', brokerUrlFlag)
    .requiredOption('--actors <spec>', 'comma list of collector, beacon:N[-M], phone:N[-M] (household ranges)', parseActorSpec)
    .option('--name <name>', 'MQTT client id suffix of this host (default: pid)')
    .option('--seed <n>', 'scenario seed; all hosts of a run must agree', intFlag('--seed', 0, 2 ** 32 - 1))
    .option('--households <n>', 'households in the scenario (layout); all hosts must agree', intFlag('--households'))
    .option('--phones-per-household <n>', 'phones per household', intFlag('--phones-per-household'))
    .option('--speed <x>', 'simulated ms per wall ms', numberFlag('--speed', 0.001, 1e6), 1)
    .option('--duration <s>', 'stop after this many simulated seconds (default: run until SIGINT/SIGTERM)', intFlag('--duration', 1))
    .option('--new-epoch', 'publish a new epoch instead of joining the retained one')
    .option('--beacon-period <s>', 'seconds between beacon frames', numberFlag('--beacon-period', 0.001))
    .option('--scan-window <s>', 'phone scan window, seconds', numberFlag('--scan-window', 0.001))
    .option('--scan-period <s>', 'phone scan period, seconds', numberFlag('--scan-period', 0.001))
    .option('--report-period <s>', 'phone report period, seconds', numberFlag('--report-period', 0.001))
    .option('--log-level <level>', 'debug | info | warn | error (stderr)', 'warn')
    .action(async (flags: HostFlags) => {
      const scenario = parseConfig(
        demoScenarioSchema,
        defined({
          seed: flags.seed,
          households: flags.households,
          phonesPerHousehold: flags.phonesPerHousehold,
          beaconPeriodS: flags.beaconPeriod,
          scanWindowS: flags.scanWindow,
          scanPeriodS: flags.scanPeriod,
          reportPeriodS: flags.reportPeriod,
        }),
      );
      const specs = selectedSpecs(scenario, flags.actors);
      const name = flags.name ?? String(process.pid);
      const logger = createLogger({ name: `host-${name}`, level: flags.logLevel as 'warn' });
      const opened = await openBus({ kind: 'url', url: flags.broker }, `tc-host-${name}`, logger);
      const epoch = await agreeOnEpoch(opened.bus, flags.speed, flags.newEpoch === true, logger);
      const scheduler = new WallScheduler(epoch);
      const air = new BusAir({
        scheduler,
        bus: opened.bus,
        rng: new SeededRng(seedBytes(scenario.seed)).fork(`air:${name}`),
        positions: (id) => positionOf(scenario, id),
        onRejected: (rejection) => logger.debug('rejected air message', { reason: rejection.reason }),
      });
      const host = new Host({ scheduler, bus: opened.bus, messages: demoMessages(), logger, radioFor: (spec) => air.attach(spec.id) });
      for (const spec of specs) await host.spawn(spec);
      logger.info('host running', { actors: specs.length, epoch });
      const finished = flags.duration === undefined ? undefined : sleep((flags.duration * 1000) / epoch.speed).then(() => undefined);
      await onShutdown(
        logger,
        async () => {
          await host.stop();
          await sleep(200); // let the last reports cross the broker before we print
          const actors = Object.fromEntries(specs.map((spec) => [`${spec.role}/${spec.id}`, reportOf(host, spec)]));
          const { rejectedBy, ...busAir } = air.busCounters;
          const report = { host: name, actors, air: air.counters, busAir: { ...busAir, rejectedBy: Object.fromEntries(rejectedBy) }, bus: host.stats };
          process.stdout.write(`${JSON.stringify(report)}\n`);
          scheduler.cancelAll();
          await air.close();
          await opened.close();
        },
        finished,
      );
    });
}
