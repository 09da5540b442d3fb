/**
 * Logger port adapters (actors/ports.ts):
 * - createLogger: pino, one JSON object per line, to stderr by default because
 *   stdout carries program output (JSON results, reports) that must stay parseable;
 * - MemoryLogger: records entries for tests to assert on;
 * - silentLogger: discards everything.
 *
 * The port takes (msg, fields) — message first reads better at call sites —
 * while pino takes (fields, msg); the adapter swaps them.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import pino from 'pino';
import type { LogFields, LogLevel, Logger } from '../actors/ports.ts';
import { MisuseError } from '../protocol/errors.ts';

export interface LoggerOptions {
  /** Least severe level written; 'silent' writes nothing. */
  readonly level: LogLevel | 'silent';
  /** Goes into every line as `name` (e.g. the process or actor host). */
  readonly name: string;
  /** 'stderr' (default), 'stdout', or a file path (appended to, directories created). */
  readonly destination?: 'stderr' | 'stdout' | (string & {});
  /** Human-readable lines (`HH:MM:SS.mmm LEVEL name: msg key=value`) instead of JSON. */
  readonly pretty?: boolean;
}

const LEVELS: readonly string[] = ['debug', 'info', 'warn', 'error', 'silent'];

/**
 * Keys pino writes itself. A field with one of these names would produce a
 * duplicate JSON key (and shadow pino's value in most parsers), so it is
 * written as `field.<name>` instead.
 */
const RESERVED = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'name']);

export function createLogger(options: LoggerOptions): Logger {
  if (!LEVELS.includes(options.level)) throw new MisuseError('options.level', `must be one of ${LEVELS.join(', ')}`);
  if (typeof options.name !== 'string' || options.name.length === 0) throw new MisuseError('options.name', 'must be a non-empty string');
  const sink = openDestination(options.destination ?? 'stderr');
  const out = options.pretty === true ? prettyStream(sink) : sink;
  const root = pino(
    {
      name: options.name,
      level: options.level,
      // Level names ("info") rather than pino's numbers (30): lines are read by
      // people and by jq filters more often than by pino tooling.
      formatters: { level: (label) => ({ level: label }) },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    out,
  );
  return new PinoLogger(root);
}

class PinoLogger implements Logger {
  constructor(private readonly p: pino.Logger) {}

  debug(msg: string, fields?: LogFields): void {
    if (this.p.isLevelEnabled('debug')) this.p.debug(sanitize(fields), msg);
  }
  info(msg: string, fields?: LogFields): void {
    if (this.p.isLevelEnabled('info')) this.p.info(sanitize(fields), msg);
  }
  warn(msg: string, fields?: LogFields): void {
    if (this.p.isLevelEnabled('warn')) this.p.warn(sanitize(fields), msg);
  }
  error(msg: string, fields?: LogFields): void {
    if (this.p.isLevelEnabled('error')) this.p.error(sanitize(fields), msg);
  }
  child(bindings: LogFields): Logger {
    return new PinoLogger(this.p.child(sanitize(bindings)));
  }
}

/** Rename reserved keys and serialise Errors (JSON.stringify turns them into {}). */
function sanitize(fields: LogFields | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (fields === undefined) return out;
  for (const [key, value] of Object.entries(fields)) {
    out[RESERVED.has(key) ? `field.${key}` : key] = value instanceof Error ? pino.stdSerializers.err(value) : value;
  }
  return out;
}

function openDestination(destination: string): pino.DestinationStream {
  if (destination === 'stderr') return pino.destination({ dest: 2, sync: true });
  if (destination === 'stdout') return pino.destination({ dest: 1, sync: true });
  if (destination.length === 0) throw new MisuseError('options.destination', "must be 'stderr', 'stdout' or a file path");
  mkdirSync(dirname(destination), { recursive: true });
  // sync: a line is in the file when the call returns, so the last words
  // before a crash are not lost in a buffer.
  return pino.destination({ dest: destination, sync: true, append: true });
}

/** Reformat pino's JSON lines for a terminal. */
function prettyStream(sink: pino.DestinationStream): pino.DestinationStream {
  return {
    write(line: string): void {
      let entry: Record<string, unknown>;
      try {
        entry = JSON.parse(line) as Record<string, unknown>;
      } catch {
        sink.write(line);
        return;
      }
      const { level, time, msg, name, pid: _pid, hostname: _host, ...rest } = entry;
      const clock = typeof time === 'string' ? time.slice(11, 23) : '';
      const extras = Object.entries(rest)
        .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
        .join(' ');
      const head = `${clock} ${String(level).toUpperCase().padEnd(5)} ${String(name)}: ${String(msg)}`;
      sink.write(extras.length > 0 ? `${head} ${extras}\n` : `${head}\n`);
    },
  };
}

// ---------------------------------------------------------------- for tests

export interface LogEntry {
  readonly level: LogLevel;
  readonly msg: string;
  readonly fields: LogFields;
  /** Merged bindings of the child chain that logged it ({} for the root). */
  readonly bindings: LogFields;
}

/** Records every entry (all levels) in order; children share the root's list. */
export class MemoryLogger implements Logger {
  readonly entries: LogEntry[];

  constructor(
    private readonly bindings: LogFields = {},
    entries: LogEntry[] = [],
  ) {
    this.entries = entries;
  }

  debug(msg: string, fields?: LogFields): void {
    this.record('debug', msg, fields);
  }
  info(msg: string, fields?: LogFields): void {
    this.record('info', msg, fields);
  }
  warn(msg: string, fields?: LogFields): void {
    this.record('warn', msg, fields);
  }
  error(msg: string, fields?: LogFields): void {
    this.record('error', msg, fields);
  }
  child(bindings: LogFields): Logger {
    return new MemoryLogger({ ...this.bindings, ...bindings }, this.entries);
  }

  /** Entries at `level`, or whose message equals `msg`, or both. */
  find(filter: { readonly level?: LogLevel; readonly msg?: string }): LogEntry[] {
    return this.entries.filter((e) => (filter.level === undefined || e.level === filter.level) && (filter.msg === undefined || e.msg === filter.msg));
  }

  /** Forget recorded entries (shared with children). */
  clear(): void {
    this.entries.length = 0;
  }

  private record(level: LogLevel, msg: string, fields: LogFields | undefined): void {
    this.entries.push({ level, msg, fields: fields ?? {}, bindings: this.bindings });
  }
}

const noop = (): void => {};

/** Discards everything. */
export const silentLogger: Logger = {
  debug: noop,
  info: noop,
  warn: noop,
  error: noop,
  child: () => silentLogger,
};
