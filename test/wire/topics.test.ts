/**
 * protocol/wire/topics.ts (DESIGN.md "Wire and topics"): topic builders,
 * actor addresses, and MQTT 3.1.1 §4.7 topic-filter matching.
 */
import { misuseField } from '../support/misuse.ts';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  AIR_FILTER,
  CHANNELS,
  EPOCH_TOPIC,
  ROLES,
  actorAddress,
  actorTopic,
  airTopic,
  inboxTopic,
  isTopicFilter,
  isTopicName,
  keysTopic,
  parseActorAddress,
  roleChannelFilter,
  topicMatches,
  type Channel,
  type Role,
} from '../../protocol/wire/topics.ts';

const segment = fc.stringMatching(/^[A-Za-z0-9_.-]{1,64}$/);
const badSegment = fc.oneof(
  fc.constantFrom('', '+', '#', 'a/b', 'a b', 'x'.repeat(65), 'é', 'a\u0000', '$SYS', 'a+', '#a'),
  fc.string({ unit: 'binary', maxLength: 70 }).filter((s) => !/^[A-Za-z0-9_.-]{1,64}$/.test(s)),
);


describe('topics: builders (tc/v1/<role>/<actorId>/<channel>, sim, keys)', () => {
  it('build the documented layout', () => {
    expect(actorTopic('phone', 'p1', 'inbox')).toBe('tc/v1/phone/p1/inbox');
    expect(inboxTopic('app-backend', 'main')).toBe('tc/v1/app-backend/main/inbox');
    expect(roleChannelFilter('phone', 'status')).toBe('tc/v1/phone/+/status');
    expect(airTopic('c-3_4')).toBe('tc/v1/sim/air/c-3_4');
    expect(keysTopic('daily')).toBe('tc/v1/keys/daily');
    expect(EPOCH_TOPIC).toBe('tc/v1/sim/epoch');
    expect(topicMatches(AIR_FILTER, airTopic('c1'))).toBe(true);
  });

  it('property: a segment that could smuggle a level or wildcard throws MisuseError naming it', () => {
    fc.assert(
      fc.property(badSegment, (bad) => {
        expect(misuseField(() => actorTopic('phone', bad, 'inbox'))).toBe('actorId');
        expect(misuseField(() => actorAddress('beacon', bad))).toBe('actorId');
        expect(misuseField(() => airTopic(bad))).toBe('cell');
        expect(misuseField(() => keysTopic(bad))).toBe('name');
      }),
      { numRuns: 300 },
    );
  });

  it('an unknown role or channel (untyped callers) throws MisuseError naming it', () => {
    expect(misuseField(() => actorTopic('nobody' as Role, 'p1', 'inbox'))).toBe('role');
    expect(misuseField(() => actorTopic('phone/x' as Role, 'p1', 'inbox'))).toBe('role');
    expect(misuseField(() => actorTopic('phone', 'p1', '#' as Channel))).toBe('channel');
    expect(misuseField(() => roleChannelFilter('+' as Role, 'inbox'))).toBe('role');
    expect(misuseField(() => actorAddress('' as Role, 'p1'))).toBe('role');
  });

  it('property: every built topic is a valid MQTT topic name of exactly five levels, matched by its role filter', () => {
    fc.assert(
      fc.property(fc.constantFrom(...ROLES), segment, fc.constantFrom(...CHANNELS), (role, id, channel) => {
        const topic = actorTopic(role, id, channel);
        expect(isTopicName(topic)).toBe(true);
        expect(topic.split('/')).toHaveLength(5);
        expect(topicMatches(roleChannelFilter(role, channel), topic)).toBe(true);
      }),
    );
  });
});

describe('topics: actor addresses <role>/<actorId>', () => {
  it('property: parseActorAddress(actorAddress(role, id)) round-trips', () => {
    fc.assert(
      fc.property(fc.constantFrom(...ROLES), segment, (role, actorId) => {
        expect(parseActorAddress(actorAddress(role, actorId))).toEqual({ role, actorId });
      }),
    );
  });

  it.each(['', 'phone', 'phone/', '/p1', 'nobody/p1', 'phone/a/b', 'phone/a+b', 'phone/#', 'Phone/p1', `phone/${'x'.repeat(65)}`])(
    'malformed address %j → undefined',
    (address) => {
      expect(parseActorAddress(address)).toBeUndefined();
    },
  );
});

describe('topics: MQTT 3.1.1 §4.7 topic names and filters', () => {
  // §4.7.1.2 multi-level wildcard
  it('§4.7.1.2: "sport/tennis/player1/#" matches the parent level and any descendants', () => {
    const f = 'sport/tennis/player1/#';
    expect(topicMatches(f, 'sport/tennis/player1')).toBe(true);
    expect(topicMatches(f, 'sport/tennis/player1/ranking')).toBe(true);
    expect(topicMatches(f, 'sport/tennis/player1/score/wimbledon')).toBe(true);
    expect(topicMatches(f, 'sport/tennis/player2')).toBe(false);
    expect(topicMatches('sport/#', 'sport')).toBe(true);
    expect(topicMatches('#', 'sport/tennis')).toBe(true);
    expect(topicMatches('#', '/')).toBe(true);
  });

  it('§4.7.1.2: "#" only as the whole last level; "sport/tennis#" and "sport/tennis/#/ranking" are invalid', () => {
    expect(isTopicFilter('sport/tennis/#')).toBe(true);
    expect(isTopicFilter('#')).toBe(true);
    for (const bad of ['sport/tennis#', 'sport/tennis/#/ranking', '#/x', 'a/##']) {
      expect(isTopicFilter(bad)).toBe(false);
      expect(misuseField(() => topicMatches(bad, 'sport/tennis'))).toBe('filter');
    }
  });

  // §4.7.1.3 single-level wildcard
  it('§4.7.1.3: "+" matches exactly one level, which may be empty', () => {
    expect(topicMatches('sport/tennis/+', 'sport/tennis/player1')).toBe(true);
    expect(topicMatches('sport/tennis/+', 'sport/tennis/player2')).toBe(true);
    expect(topicMatches('sport/tennis/+', 'sport/tennis/player1/ranking')).toBe(false);
    expect(topicMatches('sport/+', 'sport')).toBe(false);
    expect(topicMatches('sport/+', 'sport/')).toBe(true);
    expect(topicMatches('+/+', '/finance')).toBe(true);
    expect(topicMatches('/+', '/finance')).toBe(true);
    expect(topicMatches('+', '/finance')).toBe(false);
    expect(topicMatches('+/tennis/#', 'sport/tennis/player1')).toBe(true);
    expect(topicMatches('+', 'sport')).toBe(true);
  });

  it('§4.7.1.3: "+" only as a whole level; "sport+" is invalid', () => {
    for (const good of ['+', '+/tennis/#', 'sport/+/player1', '/+', '+/+']) expect(isTopicFilter(good)).toBe(true);
    for (const bad of ['sport+', 'sport/+tennis', '++']) {
      expect(isTopicFilter(bad)).toBe(false);
      expect(misuseField(() => topicMatches(bad, 'sport'))).toBe('filter');
    }
  });

  // §4.7.2 topics beginning with $
  it('§4.7.2: wildcards at the first level do not match $-topics; explicit $SYS filters do', () => {
    expect(topicMatches('#', '$SYS/broker/clients')).toBe(false);
    expect(topicMatches('+/monitor/Clients', '$SYS/monitor/Clients')).toBe(false);
    expect(topicMatches('+', '$SYS')).toBe(false);
    expect(topicMatches('$SYS/#', '$SYS/monitor/Clients')).toBe(true);
    expect(topicMatches('$SYS/monitor/+', '$SYS/monitor/Clients')).toBe(true);
    expect(topicMatches('$SYS/#', '$SYS')).toBe(true);
  });

  // §4.7.3 topic semantic and usage
  it('§4.7.3: names are case sensitive, may hold spaces, a leading "/" makes a distinct level; empty and NUL are invalid', () => {
    expect(topicMatches('ACCOUNTS', 'Accounts')).toBe(false);
    expect(topicMatches('Accounts payable', 'Accounts payable')).toBe(true);
    expect(topicMatches('finance', '/finance')).toBe(false);
    expect(topicMatches('/finance', '/finance')).toBe(true);
    expect(isTopicName('/')).toBe(true);
    for (const bad of ['', 'a/+', 'a/#', 'a\u0000b']) {
      expect(isTopicName(bad)).toBe(false);
      expect(misuseField(() => topicMatches('#', bad))).toBe('topic');
    }
    expect(misuseField(() => topicMatches('', 'a'))).toBe('filter');
    expect(misuseField(() => topicMatches('a\u0000', 'a'))).toBe('filter');
  });

  it('property: a valid topic name matches itself and "#" unless it starts with $', () => {
    const name = fc.array(fc.string({ maxLength: 6 }).map((s) => s.replace(/[+#]/g, '').split(String.fromCharCode(0)).join('')), { minLength: 1, maxLength: 5 }).map((l) => l.join('/')).filter((t) => t.length > 0);
    fc.assert(
      fc.property(name, (topic) => {
        expect(topicMatches(topic, topic)).toBe(true);
        expect(topicMatches('#', topic)).toBe(!topic.startsWith('$'));
        const levels = topic.split('/');
        expect(topicMatches(levels.map(() => '+').join('/'), topic)).toBe(!topic.startsWith('$'));
      }),
    );
  });
});
