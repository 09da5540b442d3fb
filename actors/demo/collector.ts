/**
 * Demo collector (foundation seam only): tallies the `demo.heard` reports of
 * all phones — which beacon frames each phone reassembled — so a run can
 * summarise what crossed the seam (radio → framing → phone → bus).
 */
import { assign, setup } from 'xstate';
import type { Effect, HostEvent, MessageEvent } from '../effects.ts';
import type { DemoHeard } from '../../protocol/demo/messages.ts';

export interface DemoCollectorContext {
  readonly reports: number;
  /** Frames reported, summed over phones. */
  readonly framesHeard: number;
  /** frames heard per beacon, per phone: heardBy[beacon][phone] = count. */
  readonly heardBy: Readonly<Record<string, Readonly<Record<string, number>>>>;
  /** Sum of RSSI over heard frames, for the mean in the summary. */
  readonly rssiSum: number;
  /** Reports that repeated a (phone, beacon, seq) already counted: QoS 1 may redeliver. */
  readonly duplicates: number;
  /** Highest seq counted per `phone/beacon`, to drop redelivered reports. */
  readonly lastSeq: Readonly<Record<string, number>>;
}

type DemoCollectorEvent = HostEvent | MessageEvent<'demo.heard', DemoHeard>;

function tally(context: DemoCollectorContext, report: DemoHeard): DemoCollectorContext {
  const heardBy: Record<string, Record<string, number>> = { ...context.heardBy };
  const lastSeq: Record<string, number> = { ...context.lastSeq };
  let { framesHeard, rssiSum, duplicates } = context;
  for (const entry of report.heard) {
    const key = `${report.phone}/${entry.beacon}`;
    if ((lastSeq[key] ?? -1) >= entry.seq) {
      duplicates++;
      continue;
    }
    lastSeq[key] = entry.seq;
    const perPhone = { ...heardBy[entry.beacon] };
    perPhone[report.phone] = (perPhone[report.phone] ?? 0) + 1;
    heardBy[entry.beacon] = perPhone;
    framesHeard++;
    rssiSum += entry.rssi;
  }
  return { reports: context.reports + 1, framesHeard, heardBy, rssiSum, duplicates, lastSeq };
}

export const demoCollectorMachine = setup({
  types: {
    context: {} as DemoCollectorContext,
    events: {} as DemoCollectorEvent,
    emitted: {} as Effect,
  },
  actions: {
    tally: assign(({ context, event }) => (event.type === 'msg.demo.heard' ? tally(context, event.body) : context)),
  },
}).createMachine({
  id: 'demo-collector',
  context: { reports: 0, framesHeard: 0, heardBy: {}, rssiSum: 0, duplicates: 0, lastSeq: {} },
  initial: 'collecting',
  states: {
    collecting: {
      on: {
        // No transition on host.stop: phones flush their last report when they stop.
        'msg.demo.heard': { actions: 'tally' },
      },
    },
  },
});
