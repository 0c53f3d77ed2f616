// The network plan: fixed guest-side addresses, per-slot host-side names and
// addresses, and the exact shell/nft text that sets up, resets and removes them.
// Pure functions of their inputs (unit-tested); src/network/host.ts runs them.
//
//   guest eth0 172.16.0.2/30 ── tap0 172.16.0.1/30 ┐ VM namespace faascell-<id>-<slot>:
//                                                  │ allowlist (forward), DNS DNAT, masquerade
//                              veth0 10.200.x.2/30 ┘
//                                    │ veth pair
//   host   fcv<id><slot> 10.200.x.1/30 ── forward + masquerade (table ip faascell_<id>) ── host routes
//
// Every guest has the same address, gateway and MAC: a snapshot carries them, and
// any number of clones of it run at once, each in its own namespace; the
// namespace's masquerade turns 172.16.0.2 into the slot's unique address.

import { type Cidr, type Range, formatCidr, formatIpv4, formatRange, mergeRanges, parseCidr, parseIpv4, rangeOf } from './ipv4.js';
import type { AllowRule } from './spec.js';

// ---- guest side: identical in every VM (and so in every snapshot) ----------

export const GUEST_SUBNET: Cidr = { addr: parseIpv4('172.16.0.0')!, prefix: 30 };
export const GATEWAY = '172.16.0.1';
export const GUEST_ADDRESS = '172.16.0.2';
export const GUEST_MAC = '02:fa:a5:00:00:02';
export const TAP_MAC = '02:fa:a5:00:00:01';
export const TAP = 'tap0';
export const NS_VETH = 'veth0';
/** Kernel argument /init reads: address/prefix, gateway, resolver (the gateway: the namespace forwards DNS). */
export const GUEST_NET_ARG = `faascell.net=${GUEST_ADDRESS}/${GUEST_SUBNET.prefix},${GATEWAY},${GATEWAY}`;
/**
 * The same for the kernel's own IP autoconfiguration (CONFIG_IP_PNP, static): eth0 is up with its
 * address and default route before /init runs, which then only writes resolv.conf. A kernel
 * without IP_PNP (Debian's generic one) ignores it and /init configures eth0 itself.
 */
export const GUEST_KERNEL_IP_ARG = `ip=${GUEST_ADDRESS}::${GATEWAY}:255.255.255.252::eth0:off`;

/** nft table inside every VM namespace, and the daemon's table on the host. */
export const NS_TABLE = 'faascell';
export const GUARD_TABLE = 'faascell_guard';
/** Host-side interfaces of every daemon start with this (the guard table matches it). */
export const HOST_IF_PREFIX = 'fcv';
export const NETNS_DIR = '/run/netns';

// ---- host side: one slot = one namespace + veth pair + tap ------------------

export interface PlanOptions {
  /** 6 hex characters naming this daemon's objects (from its state directory). */
  id: string;
  /** Host-side addresses: one /30 per slot. */
  hostCidr: Cidr;
}

export interface SlotPlan {
  slot: number;
  netns: string;
  netnsPath: string;
  hostIf: string;
  /** host end of the veth pair (the namespace's default gateway) */
  hostAddr: string;
  /** namespace end: what the guest's traffic is translated to */
  nsAddr: string;
  /** the slot's /30 */
  subnet: string;
}

export const MAX_SLOT_DIGITS = 5;

export function netnsPrefix(id: string): string {
  return `faascell-${id}-`;
}

export function hostIfPrefix(id: string): string {
  return `${HOST_IF_PREFIX}${id}`;
}

export function hostTableName(id: string): string {
  return `faascell_${id}`;
}

/** How many VMs can have networking at once with this host range. */
export function maxSlots(hostCidr: Cidr): number {
  return Math.min(2 ** (32 - hostCidr.prefix) / 4, 10 ** MAX_SLOT_DIGITS);
}

export function slotPlan(o: PlanOptions, slot: number): SlotPlan {
  if (!Number.isInteger(slot) || slot < 0 || slot >= maxSlots(o.hostCidr)) throw new RangeError(`slot ${slot} outside ${formatCidr(o.hostCidr)}`);
  const base = o.hostCidr.addr + slot * 4;
  const netns = `${netnsPrefix(o.id)}${slot}`;
  return {
    slot,
    netns,
    netnsPath: `${NETNS_DIR}/${netns}`,
    hostIf: `${hostIfPrefix(o.id)}${slot}`,
    hostAddr: formatIpv4(base + 1),
    nsAddr: formatIpv4(base + 2),
    subnet: formatCidr({ addr: base, prefix: 30 }),
  };
}

/** The slot a host interface or namespace name of this daemon belongs to (undefined: not ours). */
export function slotOfName(id: string, name: string): number | undefined {
  for (const prefix of [netnsPrefix(id), hostIfPrefix(id)]) {
    if (name.startsWith(prefix)) {
      const rest = name.slice(prefix.length);
      if (/^\d{1,5}$/.test(rest)) return Number(rest);
    }
  }
  return undefined;
}

const REJECT = 'reject with icmp type admin-prohibited';

/** The namespace's fixed table: everything closed until an allowlist is applied. */
export function nsBaseTable(): string {
  return `table ip ${NS_TABLE} {
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    iifname "${TAP}" jump dns
  }
  chain dns {
  }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "${NS_VETH}" masquerade
  }
  chain input {
    type filter hook input priority filter; policy drop;
    ct state established,related accept
    iifname "lo" accept
    iifname "${TAP}" icmp type echo-request accept
    iifname "${TAP}" ${REJECT}
  }
  chain forward {
    type filter hook forward priority filter; policy drop;
    iifname "${TAP}" oifname "${NS_VETH}" jump allow
    iifname "${NS_VETH}" oifname "${TAP}" ct state established,related accept
  }
  chain allow {
    ${REJECT}
  }
}
`;
}

export interface SlotScriptOptions {
  /** owner of the tap device (a VMM that drops root must be able to open it) */
  tapUser?: number;
}

/** sh script (run with sh -e) that creates a slot from nothing. */
export function createSlotScript(p: SlotPlan, o: SlotScriptOptions = {}): string {
  const user = o.tapUser !== undefined ? ` user ${o.tapUser}` : '';
  return `set -e
if [ -n "$(ip -4 route show exact ${p.subnet})" ]; then
  echo "${p.subnet} is already routed on this host (another daemon with the same network.hostCidr?)" >&2; exit 3
fi
ip netns add ${p.netns}
nsenter --net=${p.netnsPath} sh -e <<'NSEOF'
echo 1 > /proc/sys/net/ipv4/ip_forward
if [ -d /proc/sys/net/ipv6 ]; then echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6; echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6; fi
ip link set dev lo up
ip tuntap add dev ${TAP} mode tap${user}
ip link set dev ${TAP} address ${TAP_MAC}
ip addr add ${GATEWAY}/${GUEST_SUBNET.prefix} dev ${TAP}
ip link set dev ${TAP} up
nft -f - <<'NFTEOF'
${nsBaseTable()}NFTEOF
NSEOF
ip link add ${p.hostIf} type veth peer name ${NS_VETH} netns ${p.netns}
if [ -d /proc/sys/net/ipv6/conf/${p.hostIf} ]; then echo 1 > /proc/sys/net/ipv6/conf/${p.hostIf}/disable_ipv6; fi
ip addr add ${p.hostAddr}/30 dev ${p.hostIf}
ip link set dev ${p.hostIf} up
ip -n ${p.netns} addr add ${p.nsAddr}/30 dev ${NS_VETH}
ip -n ${p.netns} link set dev ${NS_VETH} up
ip -n ${p.netns} route add default via ${p.hostAddr}
`;
}

/** Removes a slot; safe to run on a half-made or already removed one. */
export function destroySlotScript(p: SlotPlan): string {
  return `ip link del ${p.hostIf} 2>/dev/null || true
ip netns del ${p.netns} 2>/dev/null || true
`;
}

/**
 * Makes a used slot as good as new for the next VM: its connection tracking
 * (inside the namespace and the host's entries for it) and neighbours are
 * flushed, the allowlist closed again.
 */
export function recycleScript(p: SlotPlan): string {
  return `set -e
nsenter --net=${p.netnsPath} sh -e <<'NSEOF'
conntrack -F >/dev/null 2>&1
ip neigh flush dev ${TAP}
nft -f - <<'NFTEOF'
flush chain ip ${NS_TABLE} allow
flush chain ip ${NS_TABLE} dns
add rule ip ${NS_TABLE} allow ${REJECT}
NFTEOF
NSEOF
conntrack -D -s ${p.nsAddr} >/dev/null 2>&1 || true
`;
}

function portMatch(r: AllowRule): string {
  const ports = r.ports ? (r.ports.from === r.ports.to ? `${r.ports.from}` : `${r.ports.from}-${r.ports.to}`) : undefined;
  if (r.proto === 'any') return ports ? ` meta l4proto { tcp, udp } th dport ${ports}` : '';
  return ports ? ` ${r.proto} dport ${ports}` : ` meta l4proto ${r.proto}`;
}

function ruleText(r: AllowRule): string {
  const dst = r.net.prefix === 0 ? '' : ` ip daddr ${formatCidr(r.net)}`;
  return `${dst}${portMatch(r)} accept`.trim();
}

/**
 * Addresses a CIDR in an allowlist never covers: other VMs' and the host's
 * veth ends, this host's own addresses, loopback, link-local (cloud metadata)
 * and multicast/broadcast. Naming one of them exactly (a /32) still allows it,
 * except the VM range itself.
 */
export function protectedRanges(hostCidr: Cidr, hostLocal: number[]): Range[] {
  const fixed = ['0.0.0.0/8', '127.0.0.0/8', '169.254.0.0/16', '224.0.0.0/3'].map((s) => rangeOf(parseCidr(s)!));
  return mergeRanges([rangeOf(hostCidr), ...fixed, ...hostLocal.map((a) => ({ lo: a, hi: a }))]);
}

export interface RulesOptions {
  rules: AllowRule[];
  hostCidr: Cidr;
  protected: Range[];
  /** resolver the guest's DNS queries to its gateway go to */
  dns?: string;
}

/** nft transaction (run inside the VM namespace) that installs one function's allowlist. */
export function rulesTransaction(o: RulesOptions): string {
  const add = (chain: string, rule: string) => `add rule ip ${NS_TABLE} ${chain} ${rule}`;
  const lines = [`flush chain ip ${NS_TABLE} allow`, `flush chain ip ${NS_TABLE} dns`];
  lines.push(add('allow', `ip daddr ${formatCidr(o.hostCidr)} ${REJECT}`));
  if (o.dns) {
    lines.push(add('allow', `ip daddr ${o.dns} meta l4proto { tcp, udp } th dport 53 accept`));
    lines.push(add('dns', `ip daddr ${GATEWAY} meta l4proto { tcp, udp } th dport 53 dnat to ${o.dns}`));
  }
  const exact = o.rules.filter((r) => r.net.prefix === 32);
  const wide = o.rules.filter((r) => r.net.prefix < 32);
  for (const r of exact) lines.push(add('allow', ruleText(r)));
  if (wide.length > 0 && o.protected.length > 0) {
    lines.push(add('allow', `ip daddr { ${o.protected.map(formatRange).join(', ')} } ${REJECT}`));
  }
  for (const r of wide) lines.push(add('allow', ruleText(r)));
  lines.push(add('allow', REJECT));
  return `${lines.join('\n')}\n`;
}

/** The daemon's table in the host namespace: forwarding for its VMs and their masquerade. */
export function hostTable(o: PlanOptions): string {
  const t = hostTableName(o.id);
  const ifs = `"${hostIfPrefix(o.id)}*"`;
  return `table ip ${t}
delete table ip ${t}
table ip ${t} {
  chain forward {
    type filter hook forward priority filter; policy accept;
    iifname ${ifs} oifname != ${ifs} accept
    iifname ${ifs} drop
    oifname ${ifs} ct state established,related accept
    oifname ${ifs} drop
  }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    ip saddr ${formatCidr(o.hostCidr)} oifname != ${ifs} masquerade
  }
}
`;
}

/**
 * Installed while FaaSCell has turned IPv4 forwarding on (it was off): the host
 * forwards nothing it did not forward before, only VM traffic.
 */
export function guardTable(): string {
  return `table ip ${GUARD_TABLE}
delete table ip ${GUARD_TABLE}
table ip ${GUARD_TABLE} {
  chain forward {
    type filter hook forward priority filter; policy accept;
    iifname "${HOST_IF_PREFIX}*" accept
    oifname "${HOST_IF_PREFIX}*" accept
    counter drop comment "IPv4 forwarding was off before FaaSCell turned it on"
  }
}
`;
}

// ---- reading the host's state ----------------------------------------------

export interface RouteEntry {
  dst: string;
  dev?: string;
  table?: string;
  type?: string;
}

/** Host routes (from `ip -j -4 route show table all`) that overlap `cidr`, ignoring this daemon's own interfaces. */
export function conflictingRoutes(cidr: Cidr, routes: RouteEntry[], ownIfPrefix: string): RouteEntry[] {
  const want = rangeOf(cidr);
  return routes.filter((r) => {
    if (r.dev?.startsWith(ownIfPrefix)) return false;
    if (r.dst === 'default') return false;
    const c = parseCidr(r.dst);
    if (!c) return false;
    const rr = rangeOf(c);
    return rr.lo <= want.hi && want.lo <= rr.hi;
  });
}

/** IPv4 addresses of `ip -j -4 addr show`. */
export function localAddresses(ipAddrJson: unknown): number[] {
  const out: number[] = [];
  if (!Array.isArray(ipAddrJson)) return out;
  for (const link of ipAddrJson as Array<{ addr_info?: Array<{ family?: string; local?: string }> }>) {
    for (const a of link.addr_info ?? []) {
      if (a.family !== undefined && a.family !== 'inet') continue;
      const c = a.local ? parseCidr(a.local) : undefined;
      if (c) out.push(c.addr);
    }
  }
  return out;
}
