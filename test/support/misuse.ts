import { MisuseError } from '../../protocol/errors.ts';

/** The `field` of the MisuseError `fn` throws, or undefined when it does not throw; other errors propagate. */
export function misuseField(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof MisuseError) return err.field;
    throw err;
  }
  return undefined;
}
