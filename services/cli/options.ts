/**
 * Flag parsing helpers shared by the CLI commands: every flag becomes a typed
 * value or a clear error naming the flag; scenario errors are reported all
 * at once (zod issues), never one by one.
 */
import { InvalidArgumentError } from 'commander';
import type { z } from 'zod';

export function intFlag(name: string, min = Number.MIN_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER) {
  return (value: string): number => {
    if (!/^-?\d+$/.test(value.trim())) throw new InvalidArgumentError(`${name} must be an integer, got ${JSON.stringify(value)}`);
    const n = Number(value);
    if (!Number.isSafeInteger(n) || n < min || n > max) throw new InvalidArgumentError(`${name} must be an integer in [${min}, ${max}]`);
    return n;
  };
}

export function numberFlag(name: string, min = -Infinity, max = Infinity) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || n < min || n > max) {
      throw new InvalidArgumentError(`${name} must be a number in [${min}, ${max}], got ${JSON.stringify(value)}`);
    }
    return n;
  };
}

export function choiceFlag<T extends string>(name: string, values: readonly T[]) {
  return (value: string): T => {
    if (!(values as readonly string[]).includes(value)) throw new InvalidArgumentError(`${name} must be one of ${values.join(', ')}, got ${JSON.stringify(value)}`);
    return value as T;
  };
}

/** Log levels a command accepts (`--log-level`). */
export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const logLevelFlag = choiceFlag('--log-level', LOG_LEVELS);

export function brokerUrlFlag(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidArgumentError(`--broker must be a URL like mqtt://127.0.0.1:1883, got ${JSON.stringify(value)}`);
  }
  if (!['mqtt:', 'mqtts:', 'tcp:', 'tls:'].includes(url.protocol)) {
    throw new InvalidArgumentError(`--broker scheme must be mqtt:, mqtts:, tcp: or tls:, got ${url.protocol}`);
  }
  return value;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}

/** Validate `raw` against `schema`, throwing one ConfigError that lists every problem. */
export function parseConfig<S extends z.ZodType>(schema: S, raw: unknown): z.output<S> {
  const result = schema.safeParse(raw);
  if (result.success) return result.data;
  throw new ConfigError(result.error.issues.map((i) => `${i.path.length > 0 ? i.path.join('.') : '(config)'}: ${i.message}`));
}

/** Drop undefined entries so schema defaults apply to flags that were not given. */
export function defined<T extends Record<string, unknown>>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
