/**
 * The secure profile's access control (DESIGN.md "Security profiles"): ONE
 * rule table, data rather than code in broker hooks, so the aedes hooks
 * (services/broker/aedes.ts) and a Mosquitto acl_file (renderMosquittoAcl)
 * enforce the same thing. Everything no rule allows is denied.
 *
 * Identity: an MQTT connection authenticates as `<role>/<actorId>` (an actor
 * address; actorId without '.', see parseUsername). Its client id must be
 * `<role>.<actorId>` or `<role>.<actorId>.<suffix>`: roles and these actor ids
 * contain no '.', so the first two dot-separated parts name exactly one user
 * and no user can take over (or read the `_bus/<clientId>` control topics of)
 * another user's client id. A `host` user may also act as the actors its
 * credentials list (`phone/p1`, or `phone/*` for every phone).
 *
 * Subscriptions: a filter is allowed only if every topic it can match is
 * readable — the union of the identity's subscribe rules must cover it
 * (uncoveredTopic). `tc/v1/#` is therefore refused to everyone, while
 * `tc/v1/+/+/status` is fine because status is readable by all.
 */
import { ROLES, SEGMENT_PATTERN, TOPIC_ROOT, isRole, isTopicFilter, isTopicName, type Role } from '../../protocol/wire/topics.ts';

/** Channels of the quarantine protocol that protocol/wire/topics.ts does not have yet (to move there). */
export const QUARANTINE_CHANNELS = { tokens: 'tokens', quarantine: 'quarantine', control: 'control', alerts: 'alerts' } as const;
/** MqttBus's private control topics: `tc/v1/_bus/<clientId>/...`. */
export const BUS_CONTROL_ROOT = `${TOPIC_ROOT}/_bus`;

export type AclAction = 'publish' | 'subscribe';

/**
 * One allow rule. `filter` is an MQTT filter template; whole levels may be
 * `{role}`/`{id}` (bound, once per principal the rule applies to, to that
 * principal's address: the "owner" rules) or `{client}` (the connection's
 * client id). `roles`: principals the rule applies to, 'any' = every
 * authenticated connection.
 */
export interface AclRule {
  readonly name: string;
  readonly action: AclAction;
  readonly filter: string;
  readonly roles: 'any' | readonly Role[];
  /** The sentence of the design this rule implements. */
  readonly why: string;
}

const R = TOPIC_ROOT;
const C = QUARANTINE_CHANNELS;
/** "any authenticated client may read events except phones and beacons". */
const EVENT_READERS: readonly Role[] = ROLES.filter((r) => r !== 'phone' && r !== 'beacon');

export const ACL_RULES: readonly AclRule[] = [
  { name: 'inbox.publish', action: 'publish', filter: `${R}/+/+/inbox`, roles: 'any', why: 'anyone may publish to an inbox (replies included)' },
  { name: 'inbox.subscribe.owner', action: 'subscribe', filter: `${R}/{role}/{id}/inbox`, roles: 'any', why: 'only its owner reads an inbox' },
  { name: 'status.publish.owner', action: 'publish', filter: `${R}/{role}/{id}/status`, roles: 'any', why: 'only the owner publishes its status' },
  { name: 'status.subscribe', action: 'subscribe', filter: `${R}/+/+/status`, roles: 'any', why: 'status is readable by everyone' },
  { name: 'events.publish.owner', action: 'publish', filter: `${R}/{role}/{id}/events`, roles: 'any', why: 'only the owner publishes its events' },
  { name: 'events.subscribe', action: 'subscribe', filter: `${R}/+/+/events`, roles: EVENT_READERS, why: 'events are read by everyone but phones and beacons' },
  { name: 'tokens.publish', action: 'publish', filter: `${R}/app-backend/+/${C.tokens}`, roles: ['phone'], why: 'phones forward token batches to an app backend' },
  { name: 'tokens.subscribe.owner', action: 'subscribe', filter: `${R}/app-backend/{id}/${C.tokens}`, roles: ['app-backend'], why: 'only the owning app backend reads its tokens' },
  { name: 'quarantine.publish', action: 'publish', filter: `${R}/app-backend/+/${C.quarantine}`, roles: ['health-authority'], why: 'only the health authority writes quarantine registrations' },
  { name: 'quarantine.subscribe.owner', action: 'subscribe', filter: `${R}/app-backend/{id}/${C.quarantine}`, roles: ['app-backend'], why: 'only the owning app backend reads them' },
  { name: 'control.publish', action: 'publish', filter: `${R}/app-backend/+/${C.control}`, roles: ['police-backend'], why: 'only the police backend enables/disables an app backend' },
  { name: 'control.subscribe.owner', action: 'subscribe', filter: `${R}/app-backend/{id}/${C.control}`, roles: ['app-backend'], why: 'only the owning app backend reads its control' },
  { name: 'alerts.publish', action: 'publish', filter: `${R}/police-backend/+/${C.alerts}`, roles: ['app-backend'], why: 'only the app backend raises alerts' },
  { name: 'alerts.subscribe.owner', action: 'subscribe', filter: `${R}/police-backend/{id}/${C.alerts}`, roles: ['police-backend'], why: 'only the police backend reads alerts' },
  { name: 'epoch.publish', action: 'publish', filter: `${R}/sim/epoch`, roles: ['host'], why: 'only hosts set the simulation epoch' },
  { name: 'epoch.subscribe', action: 'subscribe', filter: `${R}/sim/epoch`, roles: 'any', why: 'everyone reads the epoch' },
  { name: 'air.publish', action: 'publish', filter: `${R}/sim/air/+`, roles: ['host'], why: 'only simulation hosts transmit on the simulated air' },
  { name: 'air.subscribe', action: 'subscribe', filter: `${R}/sim/air/+`, roles: ['host'], why: 'only simulation hosts listen to the simulated air' },
  { name: 'uploads.publish.owner', action: 'publish', filter: `${R}/key-server/+/uploads/{id}`, roles: ['phone'], why: 'a phone uploads (and asks upload statuses) only on its own upload topic (docs/decisions/0006)' },
  { name: 'uploads.subscribe.owner', action: 'subscribe', filter: `${R}/key-server/{id}/uploads/+`, roles: ['key-server'], why: 'only the key server reads its uploads' },
  { name: 'keys-admin.publish', action: 'publish', filter: `${R}/key-server/+/admin`, roles: ['health-authority', 'host'], why: 'only providers (health authority) and operators command a key server' },
  { name: 'keys-admin.subscribe.owner', action: 'subscribe', filter: `${R}/key-server/{id}/admin`, roles: ['key-server'], why: 'only the key server reads its commands' },
  { name: 'files.publish', action: 'publish', filter: `${R}/key-server/+/files`, roles: 'any', why: 'anyone may request a distribution file' },
  { name: 'files.subscribe.owner', action: 'subscribe', filter: `${R}/key-server/{id}/files`, roles: ['key-server'], why: "only the key server's file responder reads file requests" },
  { name: 'keys.publish', action: 'publish', filter: `${R}/keys/+`, roles: ['key-server'], why: 'only the key server distributes keys' },
  { name: 'keys.subscribe', action: 'subscribe', filter: `${R}/keys/+`, roles: 'any', why: 'everyone reads distributed keys' },
  { name: 'bus.publish', action: 'publish', filter: `${BUS_CONTROL_ROOT}/{client}/#`, roles: 'any', why: "a client's own MqttBus control topics" },
  { name: 'bus.subscribe', action: 'subscribe', filter: `${BUS_CONTROL_ROOT}/{client}/#`, roles: 'any', why: "a client's own MqttBus control topics" },
];

// ---------------------------------------------------------------- identity

/** An actor a connection may act as; id '*' = every actor of the role (hosts only). */
export interface Principal {
  readonly role: Role;
  readonly id: string;
}

export interface Identity {
  readonly username: string;
  readonly clientId: string;
  /** The user itself first, then (hosts) the actors it acts as. */
  readonly principals: readonly Principal[];
}

/** A username's actor id: a topic segment without '.', so client ids stay unambiguous. */
const USER_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** `<role>/<actorId>` → its parts; undefined when it is not a valid username. */
export function parseUsername(username: string): Principal | undefined {
  const slash = username.indexOf('/');
  const role = username.slice(0, slash);
  const id = username.slice(slash + 1);
  if (slash < 0 || !isRole(role) || !USER_ID.test(id) || !SEGMENT_PATTERN.test(`${role}.${id}`)) return undefined;
  return { role, id };
}

/** `<role>/<id>` or `<role>/*` in a host's actsAs list (not `host/...`); undefined when invalid. */
export function parseActsAs(address: string): Principal | undefined {
  const slash = address.indexOf('/');
  const role = address.slice(0, slash);
  const id = address.slice(slash + 1);
  if (slash < 0 || !isRole(role) || role === 'host' || (id !== '*' && !SEGMENT_PATTERN.test(id))) return undefined;
  return { role, id };
}

/** The client id a user connects with, or the prefix of its client ids (`<prefix>.<suffix>`). */
export function clientIdPrefix(username: string): string {
  const user = parseUsername(username);
  if (user === undefined) throw new Error(`${JSON.stringify(username)} is not <role>/<actorId>`);
  return `${user.role}.${user.id}`;
}

export type IdentityResult = { readonly ok: true; readonly identity: Identity } | { readonly ok: false; readonly reason: string };

/** Check the username, the client-id rule and the actsAs list; build the identity. */
export function identityFor(username: string, clientId: string, actsAs: readonly string[] = []): IdentityResult {
  const user = parseUsername(username);
  if (user === undefined) return { ok: false, reason: `username ${JSON.stringify(username)} is not <role>/<actorId>` };
  const prefix = `${user.role}.${user.id}`;
  if (!SEGMENT_PATTERN.test(clientId) || (clientId !== prefix && !(clientId.startsWith(`${prefix}.`) && clientId.length > prefix.length + 1))) {
    return { ok: false, reason: `client id ${JSON.stringify(clientId)} must be ${prefix} or ${prefix}.<suffix> (1-64 of [A-Za-z0-9_.-])` };
  }
  if (actsAs.length > 0 && user.role !== 'host') return { ok: false, reason: `only host users may act as other actors (${username})` };
  const principals: Principal[] = [user];
  for (const address of actsAs) {
    const p = parseActsAs(address);
    if (p === undefined) return { ok: false, reason: `actsAs ${JSON.stringify(address)} is not <role>/<id> or <role>/* (role not host)` };
    principals.push(p);
  }
  return { ok: true, identity: { username, clientId, principals } };
}

// ---------------------------------------------------------------- compiled policy

/** One concrete allow filter of one identity, split into levels. */
export interface Allow {
  readonly rule: string;
  readonly filter: string;
  readonly levels: readonly string[];
}

export interface Policy {
  readonly publish: readonly Allow[];
  readonly subscribe: readonly Allow[];
}

export interface AclDecision {
  readonly allowed: boolean;
  /** The rule (or, for a filter only their union covers, the rules) that allowed it. */
  readonly rule?: string;
  readonly reason?: string;
}

/** Expand the rule table for one identity (placeholders bound, duplicates dropped). */
export function compilePolicy(identity: Identity, rules: readonly AclRule[] = ACL_RULES): Policy {
  const out: Record<AclAction, Allow[]> = { publish: [], subscribe: [] };
  const seen = new Set<string>();
  for (const rule of rules) {
    const principals = identity.principals.filter((p) => rule.roles === 'any' || rule.roles.includes(p.role));
    if (principals.length === 0) continue;
    const bound = rule.filter.split('/').some((l) => l === '{role}' || l === '{id}');
    for (const p of bound ? principals : principals.slice(0, 1)) {
      const levels = rule.filter.split('/').map((l) => {
        if (l === '{role}') return p.role;
        if (l === '{id}') return p.id === '*' ? '+' : p.id;
        if (l === '{client}') return identity.clientId;
        return l;
      });
      const filter = levels.join('/');
      if (!isTopicFilter(filter)) throw new Error(`ACL rule ${rule.name} expands to an invalid filter ${JSON.stringify(filter)}`);
      const key = `${rule.action} ${filter}`;
      if (seen.has(key)) continue;
      seen.add(key);
      out[rule.action].push({ rule: rule.name, filter, levels });
    }
  }
  return out;
}

const cache = new WeakMap<Identity, Policy>();

/** May `identity` publish to `topic` / subscribe to `filter`? Pure; the default table's policies are cached per identity. */
export function authorize(identity: Identity, action: AclAction, topicOrFilter: string, rules: readonly AclRule[] = ACL_RULES): AclDecision {
  let policy = rules === ACL_RULES ? cache.get(identity) : undefined;
  if (policy === undefined) {
    policy = compilePolicy(identity, rules);
    if (rules === ACL_RULES) cache.set(identity, policy);
  }
  return action === 'publish' ? checkPublish(identity, policy, topicOrFilter) : checkSubscribe(identity, policy, topicOrFilter);
}

function checkPublish(identity: Identity, policy: Policy, topic: string): AclDecision {
  if (!isTopicName(topic)) return { allowed: false, reason: `${JSON.stringify(topic)} is not a valid topic name` };
  const levels = topic.split('/');
  const allow = policy.publish.find((a) => levelsMatch(a.levels, levels));
  if (allow !== undefined) return { allowed: true, rule: allow.rule };
  return { allowed: false, reason: `no rule lets ${identity.username} publish to ${topic}` };
}

function checkSubscribe(identity: Identity, policy: Policy, filter: string): AclDecision {
  if (!isTopicFilter(filter)) return { allowed: false, reason: `${JSON.stringify(filter)} is not a valid topic filter` };
  const levels = filter.split('/');
  const single = policy.subscribe.find((a) => witness(levels, 0, [a.levels], []) === undefined);
  if (single !== undefined) return { allowed: true, rule: single.rule };
  const uncovered = witness(levels, 0, policy.subscribe.map((a) => a.levels), []);
  if (uncovered === undefined) {
    const used = policy.subscribe.filter((a) => overlaps(a.levels, levels)).map((a) => a.rule);
    return { allowed: true, rule: [...new Set(used)].join(' + ') };
  }
  return { allowed: false, reason: `${identity.username} may not read ${uncovered.join('/')}, which ${filter} matches` };
}

// ---------------------------------------------------------------- filter algebra

/** MQTT 3.1.1 §4.7 match of a split filter against a split topic name. */
export function levelsMatch(filter: readonly string[], topic: readonly string[]): boolean {
  if ((filter[0] === '+' || filter[0] === '#') && topic[0]?.startsWith('$') === true) return false;
  for (let i = 0; i < filter.length; i++) {
    const f = filter[i];
    if (f === '#') return true;
    if (i >= topic.length || (f !== '+' && f !== topic[i])) return false;
  }
  return filter.length === topic.length;
}

/**
 * A topic `filter` matches that none of `allows` matches, or undefined when
 * their union covers `filter`. Sound and complete: where the filter has `+`,
 * a fresh level (equal to no literal of any rule) is the hardest case —
 * any rule matching it matches every value — and `#` is unfolded level by
 * level until only rules ending in `#` could still match (rules are finite).
 */
export function uncoveredTopic(filter: string, allows: readonly string[]): string | undefined {
  if (!isTopicFilter(filter)) throw new Error(`${JSON.stringify(filter)} is not a valid topic filter`);
  return witness(filter.split('/'), 0, allows.map((a) => a.split('/')), [])?.join('/');
}

/** `alive`: rules whose first i levels match `path` (the topic chosen so far). */
function witness(f: readonly string[], i: number, rules: readonly (readonly string[])[], path: readonly string[]): string[] | undefined {
  // §4.7.2: filters starting with a wildcard never match topics starting with `$`
  const dollar = i === 0 && f[0]?.startsWith('$') === true;
  const alive = dollar ? rules.filter((r) => r[0] !== '+' && r[0] !== '#') : rules;
  if (alive.some((r) => r[i] === '#')) return undefined;
  if (i === f.length) return alive.some((r) => r.length === i) ? undefined : [...path];
  const level = f[i] as string;
  if (level === '#') return hashWitness(i, alive, path);
  const value = level === '+' ? fresh(alive, i) : level;
  return witness(f, i + 1, advance(alive, i, value), [...path, value]);
}

/** Filter `#` at level i: the topic `path` itself (i > 0: `a/#` matches `a`) and every longer one. */
function hashWitness(i: number, alive: readonly (readonly string[])[], path: readonly string[]): string[] | undefined {
  if (alive.some((r) => r[i] === '#')) return undefined;
  const parentIsTopic = i > 1 || (i === 1 && path[0] !== ''); // `/#` does not match the empty string: no topic
  if (parentIsTopic && !alive.some((r) => r.length === i)) return [...path];
  const value = fresh(alive, i);
  return hashWitness(i + 1, advance(alive, i, value), [...path, value]);
}

/** Rules still matching after level i takes `value`. */
function advance(alive: readonly (readonly string[])[], i: number, value: string): (readonly string[])[] {
  return alive.filter((r) => r.length > i && (r[i] === value || r[i] === '+'));
}

/** A level value equal to no literal the rules have at level i (never starts with `$`). */
function fresh(alive: readonly (readonly string[])[], i: number): string {
  const taken = new Set(alive.map((r) => r[i]));
  let value = 'x';
  for (let n = 1; taken.has(value); n++) value = `x${n}`;
  return value;
}

/** Do two split filters match at least one common topic? (Only names the rules of a union.) */
function overlaps(a: readonly string[], b: readonly string[]): boolean {
  for (let i = 0; ; i++) {
    const x = a[i];
    const y = b[i];
    if (x === '#' || y === '#') return true;
    if (x === undefined || y === undefined) return x === y;
    if (x !== '+' && y !== '+' && x !== y) return false;
  }
}

// ---------------------------------------------------------------- mosquitto

export interface AclUser {
  readonly username: string;
  readonly actsAs?: readonly string[];
}

/**
 * Render a Mosquitto acl_file for `users` from the same table: one `user`
 * block per user with its expanded filters (`topic write` = publish, `topic
 * read` = subscribe and delivery). `{client}` becomes a `pattern` with `%c`;
 * Mosquitto cannot enforce our client-id rule itself (see the report).
 */
export function renderMosquittoAcl(users: readonly AclUser[], rules: readonly AclRule[] = ACL_RULES): string {
  const lines = ['# generated by tracecity from services/security/acl.ts: do not edit', ''];
  const clientRules = rules.filter((r) => r.filter.includes('{client}'));
  for (const rule of clientRules) lines.push(`pattern ${rule.action === 'publish' ? 'write' : 'read'} ${rule.filter.replace('{client}', '%c')}`);
  const rest = rules.filter((r) => !r.filter.includes('{client}'));
  for (const user of [...users].sort((a, b) => a.username.localeCompare(b.username))) {
    const built = identityFor(user.username, clientIdPrefix(user.username), user.actsAs ?? []);
    if (!built.ok) throw new Error(built.reason);
    const policy = compilePolicy(built.identity, rest);
    lines.push('', `user ${user.username}`);
    for (const a of policy.publish) lines.push(`topic write ${a.filter}`);
    for (const a of policy.subscribe) lines.push(`topic read ${a.filter}`);
  }
  return `${lines.join('\n')}\n`;
}
