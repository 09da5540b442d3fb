/**
 * Every MQTT topic tracecity uses, versioned first (DESIGN.md "Wire and topics"):
 *   tc/v1/<role>/<actorId>/<channel>   channel ∈ inbox | events | status
 *   tc/v1/sim/epoch                     retained {t0, wall0, speed}
 *   tc/v1/sim/air/<cell>                simulated air, partitioned by map cell
 *   tc/v1/keys/<name>                   key distribution
 * Build topics only through these functions so a segment can never smuggle
 * in a `/`, `+` or `#`.
 */
import { MisuseError } from '../errors.ts';

export const TOPIC_ROOT = 'tc/v1';

export const ROLES = [
  'phone',
  'beacon',
  'app-backend',
  'police-backend',
  'health-authority',
  'key-server',
  'adversary',
  'collector',
  'host',
] as const;
export type Role = (typeof ROLES)[number];

export const CHANNELS = ['inbox', 'events', 'status'] as const;
export type Channel = (typeof CHANNELS)[number];

/** A topic segment: 1–64 of [A-Za-z0-9_.-]. */
export const SEGMENT_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;

export function isRole(value: string): value is Role {
  return (ROLES as readonly string[]).includes(value);
}

function segment(value: string, field: string): string {
  if (!SEGMENT_PATTERN.test(value)) throw new MisuseError(field, `${JSON.stringify(value)} is not a topic segment (${String(SEGMENT_PATTERN)})`);
  return value;
}

/** An actor's address `<role>/<actorId>`, as carried in `Envelope.from`. */
export function actorAddress(role: Role, actorId: string): string {
  return `${role}/${segment(actorId, 'actorId')}`;
}

/** Parse `<role>/<actorId>`; undefined when malformed (hostile input). */
export function parseActorAddress(address: string): { role: Role; actorId: string } | undefined {
  const slash = address.indexOf('/');
  if (slash < 0) return undefined;
  const role = address.slice(0, slash);
  const actorId = address.slice(slash + 1);
  if (!isRole(role) || !SEGMENT_PATTERN.test(actorId)) return undefined;
  return { role, actorId };
}

export function actorTopic(role: Role, actorId: string, channel: Channel): string {
  return `${TOPIC_ROOT}/${role}/${segment(actorId, 'actorId')}/${channel}`;
}

export function inboxTopic(role: Role, actorId: string): string {
  return actorTopic(role, actorId, 'inbox');
}

/** Filter matching every actor's `channel` of one role, e.g. all phones' status. */
export function roleChannelFilter(role: Role, channel: Channel): string {
  return `${TOPIC_ROOT}/${role}/+/${channel}`;
}

/** Retained epoch message that lets distributed hosts agree on simulated time. */
export const EPOCH_TOPIC = `${TOPIC_ROOT}/sim/epoch`;

export function airTopic(cell: string): string {
  return `${TOPIC_ROOT}/sim/air/${segment(cell, 'cell')}`;
}

export const AIR_FILTER = `${TOPIC_ROOT}/sim/air/+`;

export function keysTopic(name: string): string {
  return `${TOPIC_ROOT}/keys/${segment(name, 'name')}`;
}

/** MQTT 3.1.1 topic-filter match (`+` one level, `#` the rest, `$`-topics not matched by wildcards at level 0). */
export function topicMatches(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  if (topic.startsWith('$') && (f[0] === '+' || f[0] === '#')) return false;
  for (let i = 0; i < f.length; i++) {
    const part = f[i];
    if (part === '#') return true;
    if (i >= t.length) return false;
    if (part !== '+' && part !== t[i]) return false;
  }
  return f.length === t.length;
}
