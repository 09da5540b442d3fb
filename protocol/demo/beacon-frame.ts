/**
 * Demo beacon frame (foundation demo only; replaced by the real roles'
 * formats in later issues). Deliberately larger than one legacy
 * advertisement so it must travel fragmented (protocol/wire/framing.ts).
 *
 *   [0]        version = 0x01
 *   [1]        L = length of the beacon id, 1..64
 *   [2, 2+L)   beacon id, ASCII [A-Za-z0-9_.-]
 *   [2+L, +4)  sequence number, uint32 big-endian
 *   [.., end)  filler (random bytes) up to the configured size
 */
import { MisuseError, accept, reject, type Verdict } from '../errors.ts';
import { SEGMENT_PATTERN } from '../wire/topics.ts';

export const DEMO_FRAME_VERSION = 0x01;
/** Fixed part: version + id length + seq. */
export const DEMO_FRAME_OVERHEAD_BYTES = 1 + 1 + 4;
export const DEMO_FRAME_MAX_BYTES = 512;

export interface DemoFrame {
  readonly beacon: string;
  readonly seq: number;
}

const ASCII = new TextEncoder();
const DECODE = new TextDecoder('ascii', { fatal: false });

export function encodeDemoFrame(frame: DemoFrame, filler: Uint8Array): Uint8Array {
  if (!SEGMENT_PATTERN.test(frame.beacon)) throw new MisuseError('frame.beacon', 'must be 1–64 of [A-Za-z0-9_.-]');
  if (!Number.isInteger(frame.seq) || frame.seq < 0 || frame.seq > 0xffffffff) throw new MisuseError('frame.seq', 'must be a uint32');
  const id = ASCII.encode(frame.beacon);
  const size = DEMO_FRAME_OVERHEAD_BYTES + id.length + filler.length;
  if (size > DEMO_FRAME_MAX_BYTES) throw new MisuseError('filler', `frame would be ${size} bytes, over ${DEMO_FRAME_MAX_BYTES}`);
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  out[0] = DEMO_FRAME_VERSION;
  out[1] = id.length;
  out.set(id, 2);
  view.setUint32(2 + id.length, frame.seq);
  out.set(filler, 6 + id.length);
  return out;
}

export function decodeDemoFrame(bytes: Uint8Array): Verdict<DemoFrame> {
  if (bytes.length < DEMO_FRAME_OVERHEAD_BYTES + 1) return reject('demo-frame', 'too-short', `${bytes.length} bytes`);
  if (bytes.length > DEMO_FRAME_MAX_BYTES) return reject('demo-frame', 'too-long', `${bytes.length} bytes`);
  if (bytes[0] !== DEMO_FRAME_VERSION) return reject('demo-frame', 'unknown-version', `version ${String(bytes[0])}`);
  const idLength = bytes[1] ?? 0;
  if (idLength < 1 || 6 + idLength > bytes.length) return reject('demo-frame', 'bad-length', `id length ${idLength}`, 'beacon');
  const beacon = DECODE.decode(bytes.subarray(2, 2 + idLength));
  if (!SEGMENT_PATTERN.test(beacon)) return reject('demo-frame', 'bad-id', 'beacon id is not a topic segment', 'beacon');
  const seq = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(2 + idLength);
  return accept({ beacon, seq });
}
