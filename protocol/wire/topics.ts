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

/**
 * inbox/events/status: every actor. The quarantine channels (docs/decisions/0002)
 * exist so an MQTT ACL, which sees topics and not message types, can say who
 * may write what: `tokens` (phones → app backend), `quarantine` (health
 * authority → app backend), `control` (police → app backend), `alerts`
 * (app backend → police). The key server's (docs/decisions/0006): `uploads`
 * (phones → key server), `admin` (providers and operators → key server),
 * `files` (anyone → the key server's file responder).
 */
export const CHANNELS = ['inbox', 'events', 'status', 'tokens', 'quarantine', 'control', 'alerts', 'uploads', 'admin', 'files'] as const;
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

function roleSegment(role: Role): Role {
  if (!isRole(role)) throw new MisuseError('role', `${JSON.stringify(role)} is not one of ${ROLES.join(', ')}`);
  return role;
}

function channelSegment(channel: Channel): Channel {
  if (!(CHANNELS as readonly string[]).includes(channel)) {
    throw new MisuseError('channel', `${JSON.stringify(channel)} is not one of ${CHANNELS.join(', ')}`);
  }
  return channel;
}

/** An actor's address `<role>/<actorId>`, as carried in `Envelope.from`. */
export function actorAddress(role: Role, actorId: string): string {
  return `${roleSegment(role)}/${segment(actorId, 'actorId')}`;
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
  return `${TOPIC_ROOT}/${roleSegment(role)}/${segment(actorId, 'actorId')}/${channelSegment(channel)}`;
}

export function inboxTopic(role: Role, actorId: string): string {
  return actorTopic(role, actorId, 'inbox');
}

/** Where phones forward presence-token batches. */
export function tokensTopic(appBackendId: string): string {
  return actorTopic('app-backend', appBackendId, 'tokens');
}

/** Where the health authority registers quarantines. */
export function quarantineTopic(appBackendId: string): string {
  return actorTopic('app-backend', appBackendId, 'quarantine');
}

/** Where the police backend enables and disables monitoring. */
export function controlTopic(appBackendId: string): string {
  return actorTopic('app-backend', appBackendId, 'control');
}

/** Where the app backend raises alerts (only the police backend reads it). */
export function alertsTopic(policeBackendId: string): string {
  return actorTopic('police-backend', policeBackendId, 'alerts');
}

/** Filter matching every actor's `channel` of one role, e.g. all phones' status. */
export function roleChannelFilter(role: Role, channel: Channel): string {
  return `${TOPIC_ROOT}/${roleSegment(role)}/+/${channelSegment(channel)}`;
}

/** Retained epoch message that lets distributed hosts agree on simulated time. */
export const EPOCH_TOPIC = `${TOPIC_ROOT}/sim/epoch`;

export function airTopic(cell: string): string {
  return `${TOPIC_ROOT}/sim/air/${segment(cell, 'cell')}`;
}

export const AIR_FILTER = `${TOPIC_ROOT}/sim/air/+`;

/**
 * A phone's own upload topic at a key server (docs/decisions/0006): the last
 * level is the phone's actor id, so the secure profile's ACL can bind it to
 * the phone's login and the server can hold the sender to it.
 */
export function keyServerUploadTopic(serverId: string, phoneId: string): string {
  return `${actorTopic('key-server', serverId, 'uploads')}/${segment(phoneId, 'phoneId')}`;
}

export function keysTopic(name: string): string {
  return `${TOPIC_ROOT}/keys/${segment(name, 'name')}`;
}

const NUL = String.fromCharCode(0);

/** Longest topic name or filter MQTT 3.1.1 allows (UTF-8 bytes, §1.5.3); we bound UTF-16 units. */
export const MAX_MQTT_TOPIC_LENGTH = 65535;

/** A valid MQTT 3.1.1 topic name (§4.7.3): non-empty, no wildcards, no U+0000. */
export function isTopicName(topic: string): boolean {
  return topic.length > 0 && topic.length <= MAX_MQTT_TOPIC_LENGTH && !/[+#]/.test(topic) && !topic.includes(NUL);
}

/**
 * A valid MQTT 3.1.1 topic filter (§4.7.1, §4.7.3): non-empty, no U+0000,
 * `+` only as a whole level, `#` only as the whole last level.
 */
export function isTopicFilter(filter: string): boolean {
  if (filter.length === 0 || filter.length > MAX_MQTT_TOPIC_LENGTH || filter.includes(NUL)) return false;
  const levels = filter.split('/');
  for (let i = 0; i < levels.length; i++) {
    const level = levels[i] ?? '';
    if (level === '#') {
      if (i !== levels.length - 1) return false;
    } else if (level !== '+' && /[+#]/.test(level)) {
      return false;
    }
  }
  return true;
}

/**
 * MQTT 3.1.1 topic-filter match (§4.7): `+` matches exactly one level (which
 * may be empty), `#` the parent level and any number of child levels, and
 * topics starting with `$` are not matched by a filter starting with a wildcard
 * (§4.7.2). Throws MisuseError for an invalid filter or topic name.
 */
export function topicMatches(filter: string, topic: string): boolean {
  if (!isTopicFilter(filter)) throw new MisuseError('filter', `${JSON.stringify(filter)} is not a valid MQTT topic filter`);
  if (!isTopicName(topic)) throw new MisuseError('topic', `${JSON.stringify(topic)} is not a valid MQTT topic name`);
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
