/**
 * The host's radio effects (actors/effects.ts): advertise (optionally with a
 * fresh address), stop advertising, scan with the port's ScanOptions, and
 * batched delivery — frames the radio hands over in one synchronous burst
 * (the windowed air reports a whole scan window at its end) become one
 * `radio.frames` event, flushed on the next microtask. The flush is tracked
 * work, so the virtual scheduler does not move time before it ran.
 */
import type { Radio, ReceivedFrame } from '../../actors/ports.ts';
import type { RadioAdvertiseEffect, RadioScanEffect, RadioStopAdvertisingEffect } from '../../actors/effects.ts';

export type RadioEffect = RadioAdvertiseEffect | RadioStopAdvertisingEffect | RadioScanEffect;

export interface RadioEffectHooks {
  /** Hand an event to the actor. */
  readonly send: (event: { type: string; [k: string]: unknown }) => void;
  /** Track asynchronous work (must not reject). */
  readonly track: (op: Promise<void>) => void;
  readonly now: () => number;
}

/** Carry out one radio effect; the promise settles when the radio has. */
export function radioEffect(radio: Radio, effect: RadioEffect, hooks: RadioEffectHooks): Promise<void> {
  switch (effect.type) {
    case 'radio.advertise':
      return radio.advertise(effect.payloads, effect.intervalMs, effect.newAddress === true ? { newAddress: true } : {});
    case 'radio.stopAdvertising':
      return radio.stopAdvertising();
    case 'radio.scan':
      if (!effect.on) return radio.stopScan();
      return radio.startScan(effect.batch === true ? batchingListener(hooks) : (frame) => hooks.send({ type: 'radio.frame', at: frame.at, frame }), effect.options ?? {});
  }
}

function batchingListener(hooks: RadioEffectHooks): (frame: ReceivedFrame) => void {
  let pending: ReceivedFrame[] | undefined;
  return (frame) => {
    if (pending !== undefined) {
      pending.push(frame);
      return;
    }
    pending = [frame];
    hooks.track(
      Promise.resolve().then(() => {
        const frames = pending ?? [];
        pending = undefined;
        hooks.send({ type: 'radio.frames', at: hooks.now(), frames });
      }),
    );
  };
}
