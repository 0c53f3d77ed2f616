// The network plan: slot addresses and names, generated nft/sh text, host-state parsing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseCidr, parseIpv4 } from '../../src/network/ipv4.js';
import {
  conflictingRoutes,
  createSlotScript,
  destroySlotScript,
  GUEST_KERNEL_IP_ARG,
  GUEST_NET_ARG,
  guardTable,
  hostTable,
  localAddresses,
  maxSlots,
  nsBaseTable,
  protectedRanges,
  recycleScript,
  rulesTransaction,
  slotOfName,
  slotPlan,
} from '../../src/network/plan.js';
import { normalizeNetworkSpec, rulesOf } from '../../src/network/spec.js';
import { networkConfigProblem } from '../../src/network/config-check.js';

const hostCidr = { addr: parseIpv4('10.200.0.0')!, prefix: 16 };
const o = { id: 'abc123', hostCidr };

void test('slots: one /30 each, short names, reversible', () => {
  assert.equal(maxSlots(hostCidr), 16384);
  assert.equal(maxSlots({ addr: 0, prefix: 30 }), 1);
  assert.equal(maxSlots({ addr: 0, prefix: 8 }), 99999 + 1);
  const p = slotPlan(o, 0);
  assert.deepEqual(p, { slot: 0, netns: 'faascell-abc123-0', netnsPath: '/run/netns/faascell-abc123-0', hostIf: 'fcvabc1230', hostAddr: '10.200.0.1', nsAddr: '10.200.0.2', subnet: '10.200.0.0/30' });
  const q = slotPlan(o, 16383);
  assert.equal(q.hostAddr, '10.200.255.253');
  assert.ok(q.hostIf.length <= 15, 'interface names fit IFNAMSIZ');
  assert.throws(() => slotPlan(o, 16384), RangeError);
  assert.equal(slotOfName('abc123', 'fcvabc12312'), 12);
  assert.equal(slotOfName('abc123', 'faascell-abc123-7'), 7);
  assert.equal(slotOfName('abc123', 'faascell-abc124-7'), undefined);
  assert.equal(slotOfName('abc123', 'eth0'), undefined);
});

void test('guest configuration is one fixed kernel argument', () => {
  assert.equal(GUEST_NET_ARG, 'faascell.net=172.16.0.2/30,172.16.0.1,172.16.0.1');
  // the kernel's static IP autoconfiguration: client::gateway:netmask::device:off
  assert.equal(GUEST_KERNEL_IP_ARG, 'ip=172.16.0.2::172.16.0.1:255.255.255.252::eth0:off');
});

void test('slot scripts name only the slot and fixed values', () => {
  const p = slotPlan(o, 3);
  const c = createSlotScript(p);
  assert.match(c, /^set -e\nif \[ -n "\$\(ip -4 route show exact 10.200.0.12\/30\)" \]; then\n.*exit 3\nfi\nip netns add faascell-abc123-3\n/);
  assert.match(c, /ip tuntap add dev tap0 mode tap\n/);
  assert.match(c, /ip link add fcvabc1233 type veth peer name veth0 netns faascell-abc123-3/);
  assert.match(c, /ip -n faascell-abc123-3 route add default via 10.200.0.13/);
  assert.ok(c.includes(nsBaseTable()));
  assert.match(createSlotScript(p, { tapUser: 1234 }), /mode tap user 1234\n/);
  assert.match(destroySlotScript(p), /ip link del fcvabc1233.*\nip netns del faascell-abc123-3/);
  const r = recycleScript(p);
  assert.match(r, /conntrack -F/);
  assert.match(r, /flush chain ip faascell allow/);
  assert.match(r, /conntrack -D -s 10.200.0.14/);
});

void test('namespace base table: closed until an allowlist is applied', () => {
  const t = nsBaseTable();
  assert.match(t, /chain forward \{\n\s+type filter hook forward priority filter; policy drop;/);
  assert.match(t, /chain allow \{\n\s+reject with icmp type admin-prohibited\n\s+\}/);
  assert.match(t, /oifname "veth0" masquerade/);
});

void test('rules: VM range first, DNS, exact entries, protected set, wide entries, reject', () => {
  const spec = normalizeNetworkSpec({ mode: 'egress', allow: ['tcp://10.201.0.0/24:80', '10.201.0.2:8080', '192.0.2.2', 'udp://10.9.9.9', '0.0.0.0/0:443'] });
  const prot = protectedRanges(hostCidr, [parseIpv4('192.0.2.2')!, parseIpv4('10.200.0.1')!, parseIpv4('127.0.0.1')!]);
  const text = rulesTransaction({ rules: rulesOf(spec), hostCidr, protected: prot, dns: '10.201.0.53' });
  const lines = text.trim().split('\n');
  assert.deepEqual(lines, [
    'flush chain ip faascell allow',
    'flush chain ip faascell dns',
    'add rule ip faascell allow ip daddr 10.200.0.0/16 reject with icmp type admin-prohibited',
    'add rule ip faascell allow ip daddr 10.201.0.53 meta l4proto { tcp, udp } th dport 53 accept',
    'add rule ip faascell dns ip daddr 172.16.0.1 meta l4proto { tcp, udp } th dport 53 dnat to 10.201.0.53',
    'add rule ip faascell allow ip daddr 10.201.0.2 meta l4proto { tcp, udp } th dport 8080 accept',
    'add rule ip faascell allow ip daddr 192.0.2.2 accept',
    'add rule ip faascell allow ip daddr 10.9.9.9 meta l4proto udp accept',
    'add rule ip faascell allow ip daddr { 0.0.0.0-0.255.255.255, 10.200.0.0-10.200.255.255, 127.0.0.0-127.255.255.255, 169.254.0.0-169.254.255.255, 192.0.2.2, 224.0.0.0-255.255.255.255 } reject with icmp type admin-prohibited',
    'add rule ip faascell allow ip daddr 10.201.0.0/24 tcp dport 80 accept',
    'add rule ip faascell allow meta l4proto { tcp, udp } th dport 443 accept',
    'add rule ip faascell allow reject with icmp type admin-prohibited',
  ]);
  // without DNS and without wide entries: no DNAT, no protected set
  const t2 = rulesTransaction({ rules: rulesOf(normalizeNetworkSpec({ mode: 'egress', allow: ['10.1.1.1'] })), hostCidr, protected: prot });
  assert.doesNotMatch(t2, /dnat|53|\{ 0\.0/);
});

void test('host tables: forward and masquerade for this daemon, a guard for everyone', () => {
  const t = hostTable(o);
  assert.match(t, /^table ip faascell_abc123\ndelete table ip faascell_abc123\ntable ip faascell_abc123 \{/);
  assert.match(t, /iifname "fcvabc123\*" oifname != "fcvabc123\*" accept/);
  assert.match(t, /oifname "fcvabc123\*" ct state established,related accept\n\s+oifname "fcvabc123\*" drop/);
  assert.match(t, /ip saddr 10.200.0.0\/16 oifname != "fcvabc123\*" masquerade/);
  const g = guardTable();
  assert.match(g, /iifname "fcv\*" accept\n\s+oifname "fcv\*" accept\n\s+counter drop/);
});

void test('host state: route conflicts and local addresses', () => {
  const routes = [
    { dst: 'default', dev: 'eth0' },
    { dst: '192.0.2.0/24', dev: 'eth0' },
    { dst: '10.200.3.0/30', dev: 'fcvabc1233' },
    { dst: '10.200.7.7', dev: 'eth1', table: 'local', type: 'local' },
    { dst: '10.0.0.0/8', dev: 'tun0' },
  ];
  assert.deepEqual(
    conflictingRoutes(hostCidr, routes, 'fcvabc123').map((r) => r.dst),
    ['10.200.7.7', '10.0.0.0/8'],
  );
  assert.deepEqual(conflictingRoutes(parseCidr('10.201.0.0/16')!, routes.slice(0, 3), 'fcvabc123'), []);
  const addrs = localAddresses([
    { ifname: 'lo', addr_info: [{ family: 'inet', local: '127.0.0.1' }] },
    { ifname: 'eth0', addr_info: [{ family: 'inet', local: '192.0.2.2' }, { family: 'inet6', local: 'fd00::2' }] },
    { ifname: 'x' },
  ]);
  assert.deepEqual(addrs, [parseIpv4('127.0.0.1'), parseIpv4('192.0.2.2')]);
  assert.deepEqual(localAddresses('garbage'), []);
});

void test('network configuration cross-checks', () => {
  assert.equal(networkConfigProblem({ hostCidr: '10.200.0.0/16' }), undefined);
  assert.equal(networkConfigProblem({ hostCidr: '10.200.0.1/16' })?.key, 'network.hostCidr');
  assert.equal(networkConfigProblem({ hostCidr: '172.16.0.0/12' })?.key, 'network.hostCidr');
  assert.equal(networkConfigProblem({ hostCidr: '10.200.0.0/16', dns: '10.200.1.1' })?.key, 'network.dns');
  assert.equal(networkConfigProblem({ hostCidr: '10.200.0.0/16', dns: '172.16.0.1' })?.key, 'network.dns');
  assert.equal(networkConfigProblem({ hostCidr: '10.200.0.0/16', dns: '10.201.0.53' }), undefined);
});
