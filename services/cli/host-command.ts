/**
 * `tracecity host`: run a set of a scenario's actors in this process against
 * any MQTT broker, in wall × speed time, with the simulated air carried over
 * the broker (mode 2 of DESIGN.md). Several hosts share one run through the
 * retained epoch message and the air topics.
 *
 * Scenarios: `demo` (collector, beacons, phones) and `quarantine` (app
 * backend, police backend, health authority, SmartBeacons, patients' phones;
 * services/city/quarantine/hosting.ts). Journaled actors (the backends) keep
 * their journal and snapshots in `--store`; a host restarted on the same
 * store restores and replays them. SIGINT/SIGTERM: stop the actors, persist
 * their snapshots, print one JSON line with their counters.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { InvalidArgumentError, type Command } from 'commander';
import type { Logger, Store } from '../../actors/ports.ts';
import type { DemoBeaconContext } from '../../actors/demo/beacon.ts';
import type { DemoCollectorContext } from '../../actors/demo/collector.ts';
import type { DemoPhoneContext } from '../../actors/demo/phone.ts';
import { SeededRng } from '../../protocol/crypto/drbg.ts';
import { MisuseError } from '../../protocol/errors.ts';
import type { Epoch } from '../../protocol/wire/epoch.ts';
import { BusAir } from '../../hardware/sim/bus-medium.ts';
import type { Position } from '../../hardware/sim/propagation.ts';
import { quarantineMessages } from '../../protocol/quarantine/messages.ts';
import type { MessageRegistry } from '../../protocol/wire/messages.ts';
import { openBus } from '../bus/open.ts';
import { beaconSpec, collectorSpec, demoMessages, demoScenarioSchema, phoneSpec, positionOf, seedBytes, type DemoScenario } from '../city/demo-scenario.ts';
import { quarantineProtocolSchema } from '../city/quarantine/actors.ts';
import { QuarantineReporter } from '../city/quarantine/hosting-report.ts';
import { householdRange, quarantineHostSpecs, quarantinePositions, startOperators, type QuarantineHosting, type QuarantineSelection } from '../city/quarantine/hosting.ts';
import { CITY_PROPAGATION } from '../city/quarantine/run.ts';
import { cryptoSuiteByName } from '../crypto/index.ts';
import { Host, type ActorSpec } from '../host/host.ts';
import { createLogger } from '../log.ts';
import { openStore, STORE_URL_FORMS } from '../store/index.ts';
import { EpochTimeoutError, WallScheduler, awaitEpoch, publishEpoch } from '../time/wall.ts';
import { brokerUrlFlag, choiceFlag, defined, intFlag, numberFlag, parseConfig, logLevelFlag, type LogLevel } from './options.ts';
import { onShutdown } from './shutdown.ts';

interface HostFlags {
  broker: string;
  actors: ActorSelection[];
  scenario: 'demo' | 'quarantine';
  store: string;
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
  quarantineAtStart?: true | string;
  window?: number;
  tolerance?: number;
  forwardPeriod?: number;
  advertisingInterval?: number;
  ackTimeout?: number;
  retry?: number;
  registerDelay: number;
  quarantineDays: number;
  logLevel: LogLevel;
}

const DEMO_ROLES = ['collector', 'beacon', 'phone'] as const;
const ROLES = ['collector', 'app-backend', 'police-backend', 'health-authority', 'beacon', 'phone'] as const;
const HOUSEHOLD_ROLES: readonly string[] = ['beacon', 'phone'];

/** `collector`, `app-backend`, `beacon:3`, `beacon:0-4`, `phone:2-5` (household ranges). */
export interface ActorSelection {
  readonly role: (typeof ROLES)[number];
  readonly from: number;
  readonly to: number;
}

export function parseActorSpec(value: string): ActorSelection[] {
  const out: ActorSelection[] = [];
  for (const item of value.split(',').map((s) => s.trim()).filter((s) => s !== '')) {
    const m = /^([a-z-]+)(?::(\d+)(?:-(\d+))?)?$/.exec(item);
    const role = ROLES.find((r) => r === m?.[1]);
    if (m === null || role === undefined) {
      throw new InvalidArgumentError(`--actors: ${JSON.stringify(item)} is not ${ROLES.filter((r) => !HOUSEHOLD_ROLES.includes(r)).join(', ')}, beacon:N[-M] or phone:N[-M]`);
    }
    const household = HOUSEHOLD_ROLES.includes(role);
    if (household && m[2] === undefined) throw new InvalidArgumentError(`--actors: ${role} needs a household range, e.g. ${role}:0-3`);
    if (!household && m[2] !== undefined) throw new InvalidArgumentError(`--actors: ${role} takes no range`);
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
    if (!(DEMO_ROLES as readonly string[]).includes(sel.role)) throw new InvalidArgumentError(`--actors: ${sel.role} is not an actor of the demo scenario (try --scenario quarantine)`);
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

function demoReportOf(host: Host, spec: ActorSpec): unknown {
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

/** What differs between scenarios: actors, message types, layout, operators, reports. */
interface Scenario {
  readonly specs: readonly ActorSpec[];
  readonly messages: MessageRegistry;
  readonly seed: number;
  readonly positions: (id: string) => Position | undefined;
  readonly propagation?: { readonly pathLossExponent: number };
  /** Called once every actor is spawned; returns a function cancelling what it scheduled. */
  started(host: Host, bus: Parameters<typeof startOperators>[1], scheduler: WallScheduler, logger: Logger): () => void;
  report(host: Host, spec: ActorSpec): unknown;
}

function demoScenario(flags: HostFlags): Scenario {
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
  return {
    specs: selectedSpecs(scenario, flags.actors),
    messages: demoMessages(),
    seed: scenario.seed,
    positions: (id) => positionOf(scenario, id),
    started: () => () => undefined,
    report: demoReportOf,
  };
}

function quarantineScenario(flags: HostFlags): Scenario {
  if (flags.actors.some((a) => a.role === 'collector')) throw new InvalidArgumentError('--actors: collector is not an actor of the quarantine scenario');
  const protocol = parseConfig(
    quarantineProtocolSchema,
    defined({
      windowMin: flags.window === undefined ? undefined : flags.window / 60,
      toleranceS: flags.tolerance,
      beaconPeriodS: flags.beaconPeriod,
      advertisingIntervalMs: flags.advertisingInterval,
      forwardPeriodS: flags.forwardPeriod,
      scanWindowS: flags.scanWindow,
      scanPeriodS: flags.scanPeriod,
      alertRetryS: flags.retry,
    }),
  );
  const households = flags.households ?? 4;
  const hosting: QuarantineHosting = {
    seed: flags.seed ?? 1,
    households,
    protocol,
    ackTimeoutMs: flags.ackTimeout === undefined ? undefined : flags.ackTimeout * 1000,
    retryMs: flags.retry === undefined ? undefined : flags.retry * 1000,
    quarantineAtStart: flags.quarantineAtStart === undefined ? undefined : householdRange(flags.quarantineAtStart, households),
    registerDelayMs: flags.registerDelay * 1000,
    quarantineMs: flags.quarantineDays * 24 * 3_600_000,
  };
  const specs = quarantineHostSpecs(cryptoSuiteByName('node'), hosting, flags.actors as readonly QuarantineSelection[]);
  let reporter: QuarantineReporter | undefined;
  return {
    specs,
    messages: quarantineMessages(),
    seed: hosting.seed,
    positions: quarantinePositions(hosting),
    propagation: CITY_PROPAGATION,
    started: (host, bus, scheduler, logger) => {
      reporter = new QuarantineReporter(host);
      reporter.started(specs, scheduler.now());
      return startOperators(host, bus, scheduler, hosting, specs, logger);
    },
    report: (host, spec) => (reporter ?? new QuarantineReporter(host)).report(spec),
  };
}

export function registerHost(program: Command): void {
  program
    .command('host')
    .description('run some actors of a scenario in this process against an MQTT broker (wall × speed time, air over MQTT)')
    .requiredOption('--broker <url>', 'MQTT broker URL, e.g. mqtt://127.0.0.1:1883', brokerUrlFlag)
    .requiredOption(
      '--actors <spec>',
      'comma list; demo: collector, beacon:N[-M], phone:N[-M]; quarantine: app-backend, police-backend, health-authority, beacon:N[-M], phone:N[-M] (household ranges)',
      parseActorSpec,
    )
    .option('--scenario <name>', 'demo or quarantine', choiceFlag('--scenario', ['demo', 'quarantine'] as const), 'demo')
    .option('--store <url>', `store for snapshots and journals (${STORE_URL_FORMS.join(', ')}); restart on the same store to resume`, 'memory:')
    .option('--name <name>', 'MQTT client id suffix of this host (default: pid)')
    .option('--seed <n>', 'scenario seed (layout, household secrets); all hosts of a run must agree', intFlag('--seed', 0, 2 ** 32 - 1))
    .option('--households <n>', 'households in the scenario (layout); all hosts must agree (quarantine default 4)', intFlag('--households', 1))
    .option('--phones-per-household <n>', 'demo: phones per household', intFlag('--phones-per-household'))
    .option('--speed <x>', 'simulated ms per wall ms', numberFlag('--speed', 0.001, 1e6), 1)
    .option('--duration <s>', 'stop after this many simulated seconds (default: run until SIGINT/SIGTERM)', intFlag('--duration', 1))
    .option('--new-epoch', 'publish a new epoch instead of joining the retained one')
    .option('--beacon-period <s>', 'seconds between beacon frames (quarantine: token period)', numberFlag('--beacon-period', 0.001))
    .option('--scan-window <s>', 'phone scan window, seconds', numberFlag('--scan-window', 0.001))
    .option('--scan-period <s>', 'phone scan period, seconds', numberFlag('--scan-period', 0.001))
    .option('--report-period <s>', 'demo: phone report period, seconds', numberFlag('--report-period', 0.001))
    .option('--quarantine-at-start [range]', 'quarantine: the health authority quarantines households N-M (default all) at start, officers register their beacons')
    .option('--window <s>', 'quarantine: alert window (longest silence allowed), seconds', numberFlag('--window', 1, 86_400))
    .option('--tolerance <s>', 'quarantine: freshness tolerance, seconds', numberFlag('--tolerance', 0, 3600))
    .option('--forward-period <s>', 'quarantine: phone forwarding period, seconds', numberFlag('--forward-period', 0.001))
    .option('--advertising-interval <ms>', 'quarantine: beacon advertising interval, ms', intFlag('--advertising-interval', 20, 10_240))
    .option('--ack-timeout <s>', 'quarantine: phone re-sends an unacknowledged batch after this long, seconds', numberFlag('--ack-timeout', 0.001))
    .option('--retry <s>', 'quarantine: resend period of registrations, monitoring.enable and alerts, seconds', numberFlag('--retry', 0.001))
    .option('--register-delay <s>', 'quarantine: officers register beacons this long after start, seconds', numberFlag('--register-delay', 0), 30)
    .option('--quarantine-days <d>', 'quarantine: length of the quarantines started at start, days', numberFlag('--quarantine-days', 0.001, 365), 14)
    .option('--log-level <level>', 'debug | info | warn | error (stderr)', logLevelFlag, 'warn')
    .action(async (flags: HostFlags, command: Command) => {
      let scenario: Scenario;
      try {
        scenario = flags.scenario === 'quarantine' ? quarantineScenario(flags) : demoScenario(flags);
      } catch (err) {
        // Selections that only the scenario can judge: reported like flag errors (exit 2).
        if (err instanceof InvalidArgumentError || err instanceof MisuseError) command.error(`error: ${err.message}`, { exitCode: 2 });
        throw err;
      }
      const name = flags.name ?? String(process.pid);
      const logger = createLogger({ name: `host-${name}`, level: flags.logLevel });
      const store: Store = await openStore(flags.store);
      const opened = await openBus({ kind: 'url', url: flags.broker }, `tc-host-${name}`, logger);
      const epoch = await agreeOnEpoch(opened.bus, flags.speed, flags.newEpoch === true, logger);
      const scheduler = new WallScheduler(epoch);
      const air = new BusAir({
        scheduler,
        bus: opened.bus,
        rng: new SeededRng(seedBytes(scenario.seed)).fork(`air:${name}`),
        positions: scenario.positions,
        ...(scenario.propagation !== undefined ? { propagation: scenario.propagation } : {}),
        onRejected: (rejection) => logger.debug('rejected air message', { reason: rejection.reason }),
      });
      const host = new Host({ scheduler, bus: opened.bus, messages: scenario.messages, logger, store, radioFor: (spec) => air.attach(spec.id) });
      for (const spec of scenario.specs) await host.spawn(spec);
      const cancelOperators = scenario.started(host, opened.bus, scheduler, logger);
      logger.info('host running', { actors: scenario.specs.length, epoch });
      process.stderr.write(`tracecity host ${name}: ready at ${scheduler.now()}\n`);
      const finished = flags.duration === undefined ? undefined : sleep((flags.duration * 1000) / epoch.speed).then(() => undefined);
      await onShutdown(
        logger,
        async () => {
          cancelOperators();
          await host.stop();
          await sleep(200); // let the last reports cross the broker before we print
          const actors = Object.fromEntries(scenario.specs.map((spec) => [`${spec.role}/${spec.id}`, scenario.report(host, spec)]));
          const { rejectedBy, ...busAir } = air.busCounters;
          const report = { host: name, scenario: flags.scenario, actors, air: air.counters, busAir: { ...busAir, rejectedBy: Object.fromEntries(rejectedBy) }, bus: host.stats };
          process.stdout.write(`${JSON.stringify(report)}\n`);
          scheduler.cancelAll();
          await air.close();
          await opened.close();
          await store.close();
        },
        finished,
      );
    });
}
