// Allowlist grammar, function network specs, IPv4 helpers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { FaasError } from '../../src/core/errors.js';
import { formatCidr, formatIpv4, mergeRanges, parseCidr, parseIpv4, type Range } from '../../src/network/ipv4.js';
import { formatAllowRule, networkShapeKey, normalizeNetworkSpec, parseAllowEntry, rulesOf } from '../../src/network/spec.js';

void test('IPv4 parsing and formatting', () => {
  assert.equal(parseIpv4('10.0.0.1'), 167772161);
  assert.equal(formatIpv4(167772161), '10.0.0.1');
  for (const bad of ['10.0.0', '10.0.0.256', '010.0.0.1', '1.2.3.4.5', 'a.b.c.d', '', ' 1.2.3.4']) assert.equal(parseIpv4(bad), undefined, bad);
  assert.deepEqual(parseCidr('10.1.2.3/24'), { addr: parseIpv4('10.1.2.0'), prefix: 24, hostBits: true });
  assert.equal(formatCidr(parseCidr('10.1.2.3')!), '10.1.2.3');
  assert.equal(formatCidr(parseCidr('0.0.0.0/0')!), '0.0.0.0/0');
  for (const bad of ['10.0.0.0/33', '10.0.0.0/', '10.0.0.0/-1', '10.0.0.0/08x']) assert.equal(parseCidr(bad), undefined, bad);
});

void test('mergeRanges: disjoint, sorted, same addresses (property)', () => {
  const range = fc.tuple(fc.integer({ min: 0, max: 200 }), fc.integer({ min: 0, max: 30 })).map(([lo, len]): Range => ({ lo, hi: lo + len }));
  fc.assert(
    fc.property(fc.array(range, { maxLength: 12 }), (rs) => {
      const m = mergeRanges(rs);
      for (let i = 1; i < m.length; i++) assert.ok(m[i]!.lo > m[i - 1]!.hi + 1, 'disjoint and not adjacent');
      for (let a = 0; a <= 240; a++) {
        const inInput = rs.some((r) => r.lo <= a && a <= r.hi);
        const inMerged = m.some((r) => r.lo <= a && a <= r.hi);
        assert.equal(inMerged, inInput, `address ${a}`);
      }
    }),
  );
});

void test('allowlist entries: accepted forms, canonical text', () => {
  const canon = (s: string) => {
    const r = parseAllowEntry(s);
    assert.ok(r.ok, `${s}: ${r.ok ? '' : r.reason}`);
    return r.ok ? formatAllowRule(r.rule) : '';
  };
  assert.equal(canon('10.0.0.5'), '10.0.0.5');
  assert.equal(canon(' 10.0.0.0/8 '), '10.0.0.0/8');
  assert.equal(canon('10.1.2.3/24'), '10.1.2.0/24');
  assert.equal(canon('TCP://10.0.0.5:443'), 'tcp://10.0.0.5:443');
  assert.equal(canon('udp://10.0.0.53:53'), 'udp://10.0.0.53:53');
  assert.equal(canon('10.0.0.5:8000-8100'), '10.0.0.5:8000-8100');
  assert.equal(canon('10.0.0.5:80-80'), '10.0.0.5:80');
  assert.equal(canon('0.0.0.0/0'), '0.0.0.0/0');
  const r = parseAllowEntry('tcp://10.0.0.0/8:1-1024');
  assert.ok(r.ok);
  if (r.ok) assert.deepEqual(r.rule, { net: { addr: parseIpv4('10.0.0.0'), prefix: 8 }, proto: 'tcp', ports: { from: 1, to: 1024 } });
});

void test('allowlist entries: refused with a reason', () => {
  const why = (s: string) => {
    const r = parseAllowEntry(s);
    assert.equal(r.ok, false, s);
    return r.ok ? '' : r.reason;
  };
  assert.match(why('example.com'), /host names are not supported/);
  assert.match(why('example.com:443'), /host names/);
  assert.match(why('::1'), /IPv6/);
  assert.match(why('[2001:db8::1]:443'), /IPv6/);
  assert.match(why('icmp://10.0.0.1'), /unknown protocol/);
  assert.match(why('10.0.0.1:0'), /1-65535/);
  assert.match(why('10.0.0.1:65536'), /1-65535/);
  assert.match(why('10.0.0.1:90-80'), /low-high/);
  assert.match(why('10.0.0.1:http'), /number or a range/);
  assert.match(why('10.0.0.300'), /not an IPv4 address/);
  assert.match(why('172.16.0.1'), /guest's own link/);
  assert.match(why(':80'), /no address/);
});

void test('function network spec: defaults, canonical form, errors name the field', () => {
  assert.deepEqual(normalizeNetworkSpec(undefined), { mode: 'none', allow: [] });
  assert.deepEqual(normalizeNetworkSpec({}), { mode: 'none', allow: [] });
  assert.deepEqual(normalizeNetworkSpec({ mode: 'egress', allow: ['10.0.0.5:443', '10.0.0.5:443', 'tcp://10.1.0.0/16'] }), {
    mode: 'egress',
    allow: ['10.0.0.5:443', 'tcp://10.1.0.0/16'],
  });
  const field = (input: unknown): string | undefined => {
    try {
      normalizeNetworkSpec(input);
    } catch (e) {
      assert.ok(e instanceof FaasError);
      assert.equal(e.status, 400);
      return e.field;
    }
    return undefined;
  };
  assert.equal(field('egress'), 'network');
  assert.equal(field({ mode: 'open' }), 'network.mode');
  assert.equal(field({ mode: 'egress' }), 'network.allow');
  assert.equal(field({ mode: 'egress', allow: [] }), 'network.allow');
  assert.equal(field({ mode: 'none', allow: ['10.0.0.1'] }), 'network.allow');
  assert.equal(field({ mode: 'egress', allow: '10.0.0.1' }), 'network.allow');
  assert.equal(field({ mode: 'egress', allow: ['10.0.0.1', 'nope'] }), 'network.allow[1]');
  assert.equal(field({ mode: 'egress', allow: ['10.0.0.1', 5] }), 'network.allow[1]');
  assert.equal(field({ mode: 'egress', allow: Array.from({ length: 65 }, (_, i) => `10.0.0.${i}`) }), 'network.allow');
  assert.equal(field({ mode: 'egress', allow: ['10.0.0.1'], extra: 1 }), 'network.extra');
});

void test('canonical entries parse back to the same rules', () => {
  fc.assert(
    fc.property(
      fc.ipV4(),
      fc.integer({ min: 0, max: 32 }),
      fc.constantFrom('', 'tcp://', 'udp://'),
      fc.option(fc.tuple(fc.integer({ min: 1, max: 65535 }), fc.integer({ min: 0, max: 100 }))),
      (ip, prefix, proto, ports) => {
        const text = `${proto}${ip}/${prefix}${ports ? `:${ports[0]}-${Math.min(65535, ports[0] + ports[1])}` : ''}`;
        const r = parseAllowEntry(text);
        if (!r.ok) return /guest's own link/.test(r.reason);
        const again = parseAllowEntry(formatAllowRule(r.rule));
        assert.ok(again.ok);
        if (again.ok) assert.deepEqual(again.rule, r.rule);
        return true;
      },
    ),
  );
});

void test('network shape key: none is empty, an allowlist change changes it', () => {
  assert.equal(networkShapeKey(undefined), '');
  assert.equal(networkShapeKey({ mode: 'none', allow: [] }), '');
  const a = networkShapeKey({ mode: 'egress', allow: ['10.0.0.1'] });
  const b = networkShapeKey({ mode: 'egress', allow: ['10.0.0.2'] });
  assert.match(a, /^\+net[0-9a-f]{8}$/);
  assert.notEqual(a, b);
  assert.equal(rulesOf({ mode: 'egress', allow: ['10.0.0.1', 'tcp://10.0.0.0/8:80'] }).length, 2);
});
