/**
 * `demo.heard`: a phone's report to the collector of the demo beacon frames
 * it reassembled since its last report.
 */
import { MisuseError, accept, reject, type Verdict } from '../errors.ts';
import type { MessageCodec } from '../wire/messages.ts';
import { isWireMap, type WireValue } from '../wire/msgpack.ts';
import { SEGMENT_PATTERN } from '../wire/topics.ts';

export const DEMO_HEARD = 'demo.heard';
/** Entries per report; a phone with more splits them over reports. */
export const MAX_HEARD_ENTRIES = 512;

export interface HeardEntry {
  readonly beacon: string;
  readonly seq: number;
  /** RSSI of the fragment that completed the frame, dBm. */
  readonly rssi: number;
  /** Simulated ms when the frame was completed. */
  readonly at: number;
}

export interface DemoHeard {
  readonly phone: string;
  readonly heard: readonly HeardEntry[];
}

function entryProblem(e: WireValue): string | undefined {
  if (!isWireMap(e)) return 'entry must be a map';
  const { beacon, seq, rssi, at } = e;
  if (typeof beacon !== 'string' || !SEGMENT_PATTERN.test(beacon)) return 'beacon must be a topic segment';
  if (typeof seq !== 'number' || !Number.isInteger(seq) || seq < 0 || seq > 0xffffffff) return 'seq must be a uint32';
  if (typeof rssi !== 'number' || !Number.isInteger(rssi) || rssi < -127 || rssi > 20) return 'rssi must be an integer dBm in [-127, 20]';
  if (typeof at !== 'number' || !Number.isSafeInteger(at) || at < 0) return 'at must be a non-negative integer (ms)';
  if (Object.keys(e).length !== 4) return 'unexpected fields';
  return undefined;
}

export const demoHeardCodec: MessageCodec<DemoHeard> = {
  type: DEMO_HEARD,
  decode(body: WireValue): Verdict<DemoHeard> {
    if (!isWireMap(body)) return reject(DEMO_HEARD, 'not-a-map', 'body must be a map');
    const { phone, heard } = body;
    if (typeof phone !== 'string' || !SEGMENT_PATTERN.test(phone)) return reject(DEMO_HEARD, 'field-format', 'phone must be a topic segment', 'phone');
    if (!Array.isArray(heard)) return reject(DEMO_HEARD, 'field-type', 'heard must be an array', 'heard');
    const list = heard as readonly WireValue[];
    if (list.length > MAX_HEARD_ENTRIES) return reject(DEMO_HEARD, 'too-many', `${list.length} entries`, 'heard');
    for (let i = 0; i < list.length; i++) {
      const problem = entryProblem(list[i] ?? null);
      if (problem !== undefined) return reject(DEMO_HEARD, 'field-format', problem, `heard[${i}]`);
    }
    if (Object.keys(body).length !== 2) return reject(DEMO_HEARD, 'unknown-field', 'unexpected fields');
    return accept({ phone, heard: list as unknown as HeardEntry[] });
  },
  encode(value: DemoHeard): WireValue {
    if (value.heard.length > MAX_HEARD_ENTRIES) throw new MisuseError('heard', `over ${MAX_HEARD_ENTRIES} entries`);
    return { phone: value.phone, heard: value.heard.map((e) => ({ beacon: e.beacon, seq: e.seq, rssi: e.rssi, at: e.at })) };
  },
};
