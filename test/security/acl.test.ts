/**
 * services/security/acl.ts: every sentence of the role rules (issue 3's
 * topic design), the identity / client-id rule, and the filter-covering
 * algebra checked against a brute-force oracle and protocol/wire/topics.ts.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ROLES, topicMatches } from '../../protocol/wire/topics.ts';
import {
  ACL_RULES,
  authorize,
  clientIdPrefix,
  compilePolicy,
  identityFor,
  parseUsername,
  renderMosquittoAcl,
  uncoveredTopic,
  type AclAction,
  type Identity,
} from '../../services/security/acl.ts';

function id(username: string, actsAs: readonly string[] = [], suffix = ''): Identity {
  const built = identityFor(username, `${clientIdPrefix(username)}${suffix}`, actsAs);
  if (!built.ok) throw new Error(built.reason);
  return built.identity;
}

const phone = id('phone/p1');
const phone2 = id('phone/p2');
const beacon = id('beacon/b1');
const app = id('app-backend/a1');
const app2 = id('app-backend/a2');
const police = id('police-backend/pb1');
const police2 = id('police-backend/pb2');
const health = id('health-authority/ha1');
const keyServer = id('key-server/ks1');
const collector = id('collector/c1');
const adversary = id('adversary/x1');
const host = id('host/h1', ['phone/*', 'beacon/b7'], '.run1');
const everyone = [phone, phone2, beacon, app, app2, police, police2, health, keyServer, collector, adversary, host];

const allowed = (who: Identity, action: AclAction, topic: string): boolean => authorize(who, action, topic).allowed;
/** Exactly `yes` (among everyone) may do `action` on `topic`. */
function onlyThese(action: AclAction, topic: string, yes: readonly Identity[]): void {
  for (const who of everyone) expect(allowed(who, action, topic), `${who.username} ${action} ${topic}`).toBe(yes.includes(who));
}

describe('ACL: the role rules, sentence by sentence', () => {
  it('key server (docs/decisions/0006): a phone uploads only on its own upload topic; providers and operators command; anyone requests files; only the key server reads them', () => {
    onlyThese('publish', 'tc/v1/key-server/ks1/uploads/p1', [phone, host]); // host acts as phone/*
    onlyThese('publish', 'tc/v1/key-server/ks1/uploads/p2', [phone2, host]);
    onlyThese('subscribe', 'tc/v1/key-server/ks1/uploads/+', [keyServer]);
    onlyThese('subscribe', 'tc/v1/key-server/ks2/uploads/+', []);
    onlyThese('publish', 'tc/v1/key-server/ks1/admin', [health, host]);
    onlyThese('subscribe', 'tc/v1/key-server/ks1/admin', [keyServer]);
    onlyThese('publish', 'tc/v1/key-server/ks1/files', everyone);
    onlyThese('subscribe', 'tc/v1/key-server/ks1/files', [keyServer]);
    onlyThese('publish', 'tc/v1/keys/ks1', [keyServer]);
    onlyThese('subscribe', 'tc/v1/keys/ks1.filters', everyone);
  });

  it('<role>/<id>/inbox: anyone authenticated may publish; only the owner subscribes', () => {
    onlyThese('publish', 'tc/v1/phone/p1/inbox', everyone);
    onlyThese('publish', 'tc/v1/app-backend/a1/inbox', everyone);
    onlyThese('subscribe', 'tc/v1/phone/p1/inbox', [phone, host]); // host acts as phone/*
    onlyThese('subscribe', 'tc/v1/app-backend/a1/inbox', [app]);
    onlyThese('subscribe', 'tc/v1/police-backend/pb1/inbox', [police]);
    onlyThese('subscribe', 'tc/v1/beacon/b7/inbox', [host]);
    onlyThese('subscribe', 'tc/v1/beacon/b1/inbox', [beacon]);
    onlyThese('subscribe', 'tc/v1/phone/+/inbox', [host]);
    onlyThese('subscribe', 'tc/v1/+/p1/inbox', []);
    expect(authorize(phone, 'subscribe', 'tc/v1/phone/p1/inbox').rule).toBe('inbox.subscribe.owner');
    expect(authorize(phone, 'publish', 'tc/v1/police-backend/pb1/inbox').rule).toBe('inbox.publish');
  });

  it('status: only the owner publishes, everyone authenticated reads', () => {
    onlyThese('publish', 'tc/v1/phone/p1/status', [phone, host]);
    onlyThese('publish', 'tc/v1/app-backend/a1/status', [app]);
    onlyThese('publish', 'tc/v1/host/h1/status', [host]);
    for (const f of ['tc/v1/phone/p1/status', 'tc/v1/+/+/status', 'tc/v1/phone/+/status', 'tc/v1/+/a1/status']) onlyThese('subscribe', f, everyone);
  });

  it('events: only the owner publishes; read by everyone but phones and beacons', () => {
    onlyThese('publish', 'tc/v1/app-backend/a1/events', [app]);
    onlyThese('publish', 'tc/v1/phone/p2/events', [phone2, host]);
    const readers = everyone.filter((w) => w !== phone && w !== phone2 && w !== beacon);
    for (const f of ['tc/v1/app-backend/a1/events', 'tc/v1/+/+/events', 'tc/v1/phone/p1/events']) onlyThese('subscribe', f, readers);
  });

  it('app-backend/<id>/tokens: phones publish, only the owning app backend subscribes', () => {
    onlyThese('publish', 'tc/v1/app-backend/a1/tokens', [phone, phone2, host]); // host acts as phone/*
    onlyThese('publish', 'tc/v1/app-backend/a2/tokens', [phone, phone2, host]);
    onlyThese('subscribe', 'tc/v1/app-backend/a1/tokens', [app]);
    onlyThese('subscribe', 'tc/v1/app-backend/a2/tokens', [app2]);
    onlyThese('subscribe', 'tc/v1/app-backend/+/tokens', []);
  });

  it('app-backend/<id>/quarantine: only the health authority publishes, only the owning app backend subscribes', () => {
    onlyThese('publish', 'tc/v1/app-backend/a1/quarantine', [health]);
    onlyThese('subscribe', 'tc/v1/app-backend/a1/quarantine', [app]);
    onlyThese('subscribe', 'tc/v1/app-backend/+/quarantine', []);
  });

  it('app-backend/<id>/control: only the police backend publishes, only the owning app backend subscribes', () => {
    onlyThese('publish', 'tc/v1/app-backend/a1/control', [police, police2]);
    onlyThese('subscribe', 'tc/v1/app-backend/a1/control', [app]);
  });

  it('police-backend/<id>/alerts: only the app backend publishes, only the owning police backend reads', () => {
    onlyThese('publish', 'tc/v1/police-backend/pb1/alerts', [app, app2]);
    onlyThese('subscribe', 'tc/v1/police-backend/pb1/alerts', [police]);
    onlyThese('subscribe', 'tc/v1/police-backend/pb2/alerts', [police2]);
    for (const f of ['tc/v1/police-backend/+/alerts', 'tc/v1/police-backend/#', 'tc/v1/+/pb1/alerts', 'tc/v1/#', '#']) onlyThese('subscribe', f, []);
  });

  it('sim/epoch: everyone reads, only hosts publish; sim/air/<cell>: hosts only', () => {
    onlyThese('publish', 'tc/v1/sim/epoch', [host]);
    onlyThese('subscribe', 'tc/v1/sim/epoch', everyone);
    onlyThese('publish', 'tc/v1/sim/air/c12', [host]);
    onlyThese('subscribe', 'tc/v1/sim/air/c12', [host]);
    onlyThese('subscribe', 'tc/v1/sim/air/+', [host]);
    onlyThese('subscribe', 'tc/v1/sim/#', []); // would include air for non-hosts, and other sim topics for all
    onlyThese('subscribe', 'tc/v1/sim/+', []); // also matches tc/v1/sim/x, readable by no one
  });

  it('keys/<name>: everyone reads, only the key server publishes', () => {
    onlyThese('publish', 'tc/v1/keys/gaen', [keyServer]);
    onlyThese('subscribe', 'tc/v1/keys/gaen', everyone);
    onlyThese('subscribe', 'tc/v1/keys/+', everyone);
    onlyThese('subscribe', 'tc/v1/keys/#', []); // `#` also matches tc/v1/keys/a/b
  });

  it('_bus/<clientId>/#: only the client with that id', () => {
    for (const who of everyone) {
      const own = `tc/v1/_bus/${who.clientId}`;
      expect(allowed(who, 'subscribe', `${own}/#`)).toBe(true);
      expect(allowed(who, 'subscribe', `${own}/probe`)).toBe(true);
      expect(allowed(who, 'publish', `${own}/barrier`)).toBe(true);
      expect(allowed(who, 'publish', own)).toBe(true); // `x/#` matches its parent x
    }
    onlyThese('publish', 'tc/v1/_bus/phone.p1/barrier', [phone]);
    onlyThese('subscribe', 'tc/v1/_bus/phone.p1/#', [phone]);
    onlyThese('subscribe', 'tc/v1/_bus/+/#', []);
    onlyThese('subscribe', 'tc/v1/_bus/#', []);
    expect(allowed(host, 'publish', 'tc/v1/_bus/host.h1.run1/probe')).toBe(true);
    expect(allowed(host, 'publish', 'tc/v1/_bus/host.h1/probe')).toBe(false); // another connection's id
  });

  it('everything else is denied, including malformed topics and filters', () => {
    for (const t of ['tc/v1/phone/p1/other', 'tc/v1/phone/p1', 'tc/v2/phone/p1/inbox', 'other', '$SYS/x', 'tc/v1/sim/air', 'tc/v1/keys/a/b', 'tc/v1/phone/p1/inbox/x']) {
      onlyThese('publish', t, []);
      onlyThese('subscribe', t, []);
    }
    for (const bad of ['', 'tc/v1/+/p1/inbox', 'tc/v1/#', 'a\u0000b']) expect(allowed(app, 'publish', bad)).toBe(false);
    for (const bad of ['', 'tc/v1/p#', 'tc/#/x', 'tc/v1/a+/inbox']) expect(authorize(app, 'subscribe', bad).reason).toMatch(/not a valid topic filter/);
    expect(authorize(phone, 'subscribe', 'tc/v1/#').reason).toBe('phone/p1 may not read tc/v1, which tc/v1/# matches'); // `#` includes the parent
  });
});

describe('ACL: identities and client ids', () => {
  it('client id must be <role>.<actorId> or <role>.<actorId>.<suffix>', () => {
    expect(identityFor('phone/p1', 'phone.p1').ok).toBe(true);
    expect(identityFor('phone/p1', 'phone.p1.x-2').ok).toBe(true);
    for (const bad of ['phone.p10', 'phone.p', 'phone/p1', 'p1', 'phone.p1.', 'phone.p1.a/b', 'beacon.p1', `phone.p1.${'x'.repeat(60)}`, '']) {
      expect(identityFor('phone/p1', bad).ok, bad).toBe(false);
    }
  });

  it('usernames are <known role>/<id without dots>; only hosts act as others, never as hosts', () => {
    for (const bad of ['phone', 'phone/', 'phone/p.1', 'phone/a/b', 'king/p1', '/p1', `phone/${'x'.repeat(60)}`]) expect(parseUsername(bad), bad).toBeUndefined();
    expect(identityFor('phone/p1', 'phone.p1', ['phone/p2'])).toEqual({ ok: false, reason: 'only host users may act as other actors (phone/p1)' });
    expect(identityFor('host/h1', 'host.h1', ['host/h2']).ok).toBe(false);
    expect(identityFor('host/h1', 'host.h1', ['phone/a+b']).ok).toBe(false);
    expect(identityFor('host/h1', 'host.h1', ['phone/*', 'beacon/b.1']).ok).toBe(true);
  });

  it('property: no two users can ever use the same client id', () => {
    const user = fc.tuple(fc.constantFrom(...ROLES), fc.stringMatching(/^[A-Za-z0-9_-]{1,6}$/)).map(([r, i]) => `${r}/${i}`);
    const suffix = fc.oneof(fc.constant(''), fc.stringMatching(/^\.[A-Za-z0-9_.-]{1,8}$/));
    fc.assert(
      fc.property(user, user, suffix, (u1, u2, s) => {
        fc.pre(u1 !== u2);
        const clientId = `${clientIdPrefix(u1)}${s}`;
        return identityFor(u1, clientId).ok && !identityFor(u2, clientId).ok;
      }),
      { numRuns: 2000 },
    );
  });
});

describe('ACL: filter covering', () => {
  it('a union of rules can cover what no single rule does, and names the rules', () => {
    expect(uncoveredTopic('a/#', ['a', 'a/+/#'])).toBeUndefined();
    expect(uncoveredTopic('a/#', ['a/+/#'])).toBe('a');
    expect(uncoveredTopic('a/#', ['a', 'a/+'])).toBe('a/x/x');
    expect(uncoveredTopic('a/+', ['a/x', 'a/y'])).toBe('a/x1');
    expect(uncoveredTopic('$SYS/#', ['#'])).toBe('$SYS'); // §4.7.2: `#` does not match `$` topics
    expect(uncoveredTopic('#', ['#'])).toBeUndefined();
    const rules = [
      { name: 'parent', action: 'subscribe' as const, filter: 'tc/v1/x', roles: 'any' as const, why: 'test' },
      { name: 'children', action: 'subscribe' as const, filter: 'tc/v1/x/+/#', roles: 'any' as const, why: 'test' },
    ];
    expect(authorize(phone, 'subscribe', 'tc/v1/x/#', rules)).toEqual({ allowed: true, rule: 'parent + children' });
  });

  // Brute-force oracle: every topic up to the longest filter or rule + 1 level, over the literals used plus a fresh one.
  const level = fc.constantFrom('a', 'b', '$s', '+', '#', '');
  const filterArb = fc.array(level, { minLength: 1, maxLength: 4 }).map((ls) => ls.join('/')).filter(isFilter);
  const topicsUpTo = (n: number): string[] => {
    const values = ['a', 'b', '$s', '', 'fresh'];
    let layer = values.map((v) => [v]);
    const out = [...layer];
    for (let len = 2; len <= n; len++) {
      layer = layer.flatMap((t) => values.map((v) => [...t, v]));
      out.push(...layer);
    }
    return out.map((t) => t.join('/')).filter((t) => t !== '');
  };
  const topicsBySize = new Map<number, string[]>();

  it('property: uncoveredTopic agrees with exhaustive enumeration and its witness is a real counterexample', () => {
    fc.assert(
      fc.property(filterArb, fc.array(filterArb, { maxLength: 3 }), (filter, rules) => {
        const size = Math.max(filter.split('/').length, ...rules.map((r) => r.split('/').length)) + 1;
        if (!topicsBySize.has(size)) topicsBySize.set(size, topicsUpTo(size));
        const topics = topicsBySize.get(size)!;
        const counter = topics.find((t) => topicMatches(filter, t) && !rules.some((r) => topicMatches(r, t)));
        const witness = uncoveredTopic(filter, rules);
        expect(witness === undefined, `filter ${filter} rules ${rules.join(' ')} counterexample ${counter}`).toBe(counter === undefined);
        if (witness !== undefined) {
          expect(topicMatches(filter, witness)).toBe(true);
          expect(rules.some((r) => topicMatches(r, witness))).toBe(false);
        }
      }),
      { numRuns: 3000 },
    );
  });

  const segment = fc.oneof(
    fc.constantFrom('tc', 'v1', 'phone', 'app-backend', 'police-backend', 'sim', 'air', 'epoch', 'keys', '_bus', 'phone.p1', 'host.h1.run1'),
    fc.constantFrom('p1', 'p2', 'a1', 'pb1', 'h1', 'b7', 'inbox', 'status', 'events', 'tokens', 'alerts', 'quarantine', 'control'),
    fc.constantFrom('+', '#'),
    fc.stringMatching(/^[a-z0-9]{1,3}$/),
  );
  const realisticFilter = fc
    .tuple(fc.boolean(), fc.array(segment, { minLength: 1, maxLength: 5 }))
    .map(([rooted, ls]) => (rooted ? ['tc', 'v1', ...ls] : ls).join('/'))
    .filter(isFilter);
  /** Filters near the allowed ones (levels kept, widened to `+`/`#`, or changed), so both verdicts are frequent. */
  const TOPICS = ['tc/v1/police-backend/pb1/alerts', 'tc/v1/app-backend/a1/tokens', 'tc/v1/phone/p1/inbox', 'tc/v1/sim/air/c1', 'tc/v1/keys/k'];
  const near = (who: Identity): fc.Arbitrary<string> =>
    fc
      .tuple(fc.constantFrom(...compilePolicy(who).subscribe.map((a) => a.filter), ...TOPICS), fc.array(fc.constantFrom(...'================+++#?'), { minLength: 6, maxLength: 6 }), segment)
      .map(([base, ops, other]) => {
        const out: string[] = [];
        for (const [i, level] of base.split('/').entries()) {
          const op = ops[i] ?? '=';
          if (op === '#') return [...out, '#'].join('/');
          out.push(op === '+' ? '+' : op === '?' ? other : level);
        }
        return out.join('/');
      })
      .filter(isFilter);
  const whoAndFilter = fc.constantFrom(...everyone).chain((who) => fc.tuple(fc.constant(who), fc.oneof({ arbitrary: near(who), weight: 4 }, { arbitrary: realisticFilter, weight: 1 })));
  const instantiate = (filter: string, fill: readonly string[]): string => {
    let k = 0;
    const next = (): string => fill[k++ % fill.length] ?? 'z';
    return filter
      .split('/')
      .flatMap((l) => (l === '+' ? [next()] : l === '#' ? fill.slice(0, (fill.length % 3) + (filter === '#' ? 1 : 0)) : [l]))
      .join('/');
  };

  it('property: an allowed subscription only matches topics the identity may read', () => {
    const fill = fc.array(fc.constantFrom('p1', 'a1', 'pb1', 'inbox', 'status', 'alerts', 'x', 'tc', 'v1', 'phone.p1'), { minLength: 1, maxLength: 5 });
    fc.assert(
      fc.property(whoAndFilter, fill, ([who, filter], values) => {
        const topic = instantiate(filter, values);
        fc.pre(topic !== '' && topicMatches(filter, topic));
        if (allowed(who, 'subscribe', filter)) expect(allowed(who, 'subscribe', topic), `${who.username}: ${filter} allowed but not ${topic}`).toBe(true);
      }),
      { numRuns: 5000 },
    );
  });

  it('property: a refused subscription has a concrete topic the identity may not read', () => {
    fc.assert(
      fc.property(whoAndFilter, ([who, filter]) => {
        const policy = compilePolicy(who);
        const witness = uncoveredTopic(filter, policy.subscribe.map((a) => a.filter));
        expect(witness === undefined).toBe(allowed(who, 'subscribe', filter));
        if (witness !== undefined) {
          expect(topicMatches(filter, witness)).toBe(true);
          expect(allowed(who, 'subscribe', witness)).toBe(false);
        }
      }),
      { numRuns: 5000 },
    );
  });

  it('property: a phone never subscribes to a filter matching an alerts topic, nor publishes to backend-only channels', () => {
    const pid = fc.constantFrom('pb1', 'pb2', 'x', 'p1');
    fc.assert(
      fc.property(fc.oneof(near(phone), near(police), realisticFilter), pid, (filter, id) => {
        if (topicMatches(filter, `tc/v1/police-backend/${id}/alerts`)) expect(allowed(phone, 'subscribe', filter)).toBe(false);
        for (const t of [`tc/v1/police-backend/${id}/alerts`, `tc/v1/app-backend/${id}/quarantine`, `tc/v1/app-backend/${id}/control`, 'tc/v1/sim/epoch', `tc/v1/keys/${id}`]) {
          expect(allowed(phone, 'publish', t)).toBe(false);
        }
      }),
      { numRuns: 3000 },
    );
  });
});

describe('ACL: the rule table and its Mosquitto rendering', () => {
  it('rules have unique names, live under tc/v1 and say why', () => {
    expect(new Set(ACL_RULES.map((r) => r.name)).size).toBe(ACL_RULES.length);
    for (const r of ACL_RULES) {
      expect(r.filter.startsWith('tc/v1/')).toBe(true);
      expect(r.why.length).toBeGreaterThan(5);
    }
    for (const who of everyone) expect(() => compilePolicy(who)).not.toThrow();
  });

  it('renders one user block per user and a %c pattern for the bus topics', () => {
    const acl = renderMosquittoAcl([{ username: 'police-backend/pb1' }, { username: 'phone/p1' }, { username: 'host/h1', actsAs: ['phone/*'] }]);
    expect(acl).toContain('pattern write tc/v1/_bus/%c/#\npattern read tc/v1/_bus/%c/#');
    expect(acl).toMatch(/user phone\/p1\n(topic .*\n)*topic write tc\/v1\/app-backend\/\+\/tokens\n/);
    expect(acl).toMatch(/user police-backend\/pb1\n(topic .*\n)*topic read tc\/v1\/police-backend\/pb1\/alerts\n/);
    expect(acl).toMatch(/user host\/h1\n(topic .*\n)*topic read tc\/v1\/phone\/\+\/inbox\n/);
    expect(acl.indexOf('user host/h1')).toBeLessThan(acl.indexOf('user phone/p1'));
    const phoneBlock = acl.slice(acl.indexOf('user phone/p1'), acl.indexOf('user police-backend/pb1'));
    expect(phoneBlock).not.toMatch(/alerts|quarantine|control|sim\/air/);
  });
});

function isFilter(f: string): boolean {
  const levels = f.split('/');
  return f !== '' && levels.every((l, i) => l !== '#' || i === levels.length - 1);
}
