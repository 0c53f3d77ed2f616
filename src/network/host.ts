// Host-side network operations of one daemon: its nft table, IPv4 forwarding,
// slots (namespace + veth + tap) and reaping what a killed daemon left. Every
// command text comes from plan.ts; this file only runs it and reads host state.

import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { which } from '../image/exec.js';
import { formatCidr } from './ipv4.js';
import { NetworkSetupError, runCmd, runScript, runStep } from './exec.js';
import {
  GUARD_TABLE,
  NETNS_DIR,
  type PlanOptions,
  type RouteEntry,
  type SlotPlan,
  type SlotScriptOptions,
  conflictingRoutes,
  createSlotScript,
  destroySlotScript,
  guardTable,
  hostIfPrefix,
  hostTable,
  hostTableName,
  localAddresses,
  netnsPrefix,
  recycleScript,
} from './plan.js';

/** Machine-wide: IPv4 forwarding's value before any FaaSCell daemon turned it on. */
export const FORWARD_STATE_DIR = '/run/faascell';
const FORWARD_ORIG = path.join(FORWARD_STATE_DIR, 'ip_forward.orig');
const IP_FORWARD = '/proc/sys/net/ipv4/ip_forward';
const SYS_NET = '/sys/class/net';

export const NETWORK_INSTALL_HINT = 'apt-get install iproute2 nftables util-linux conntrack';

/** Tools egress networking needs that are missing (conntrack is optional: without it used slots are destroyed, not recycled). */
export function missingTools(): string[] {
  return ['ip', 'nft', 'nsenter', 'sh'].filter((t) => !which(t));
}

export function hasConntrack(): boolean {
  return which('conntrack') !== undefined;
}

function readForwarding(): string {
  return readFileSync(IP_FORWARD, 'utf8').trim();
}

async function nftTables(): Promise<string[]> {
  const r = await runCmd('nft', ['list', 'tables']);
  if (r.code !== 0) return [];
  return r.stdout
    .split('\n')
    .map((l) => /^table ip (\S+)$/.exec(l.trim())?.[1])
    .filter((n): n is string => n !== undefined);
}

async function hostRoutes(): Promise<RouteEntry[]> {
  const out = await runStep('inspect', 'ip', ['-j', '-4', 'route', 'show', 'table', 'all']);
  try {
    return JSON.parse(out || '[]') as RouteEntry[];
  } catch {
    throw new NetworkSetupError('inspect', `ip -j route: not JSON: ${out.slice(0, 200)}`);
  }
}

/** This host's own IPv4 addresses (a CIDR in an allowlist never covers them). */
export async function hostLocalAddresses(): Promise<number[]> {
  const out = await runStep('inspect', 'ip', ['-j', '-4', 'addr', 'show']);
  try {
    return localAddresses(JSON.parse(out || '[]'));
  } catch {
    return [];
  }
}

export interface HostState {
  /** this daemon turned IPv4 forwarding on (it was off) */
  enabledForwarding: boolean;
}

/**
 * Prepares the host for this daemon's VMs: checks the host range against the
 * host's routes, turns IPv4 forwarding on if needed (guarded, remembered), and
 * installs the daemon's table.
 */
export async function hostUp(o: PlanOptions): Promise<HostState> {
  const missing = missingTools();
  if (missing.length > 0) throw new NetworkSetupError('host-setup', `egress networking needs ${missing.join(', ')} (${NETWORK_INSTALL_HINT})`);
  const conflicts = conflictingRoutes(o.hostCidr, await hostRoutes(), hostIfPrefix(o.id));
  if (conflicts.length > 0) {
    const list = conflicts.map((r) => `${r.dst}${r.dev ? ` dev ${r.dev}` : ''}${r.table ? ` table ${r.table}` : ''}`).join('; ');
    throw new NetworkSetupError('host-setup', `network.hostCidr ${formatCidr(o.hostCidr)} overlaps routes of this host (${list}): choose a free range`);
  }
  // the table first: another daemon's lastOneOut() then sees this one before forwarding changes
  await runStep('host-setup', 'nft', ['-f', '-'], hostTable(o));
  let enabledForwarding = false;
  if (readForwarding() !== '1') {
    mkdirSync(FORWARD_STATE_DIR, { recursive: true, mode: 0o700 });
    if (!existsSync(FORWARD_ORIG)) writeFileSync(FORWARD_ORIG, `${readForwarding()}\n`);
    // the guard before forwarding goes on: the host never forwards anything else, not even briefly
    await runStep('host-setup', 'nft', ['-f', '-'], guardTable());
    writeFileSync(IP_FORWARD, '1\n');
    enabledForwarding = true;
  } else if (existsSync(FORWARD_ORIG)) {
    // another FaaSCell daemon turned it on: make sure the guard is there
    await runStep('host-setup', 'nft', ['-f', '-'], guardTable());
  }
  return { enabledForwarding };
}

/**
 * Removes the daemon's table; the last FaaSCell daemon out removes the guard and
 * puts IPv4 forwarding back to what it was.
 */
export async function hostDown(o: PlanOptions): Promise<void> {
  const tables = await nftTables();
  if (tables.includes(hostTableName(o.id))) await runStep('host-teardown', 'nft', ['delete', 'table', 'ip', hostTableName(o.id)]);
  await lastOneOut();
}

async function lastOneOut(): Promise<void> {
  const others = (await nftTables()).filter((t) => /^faascell_[0-9a-f]{6}$/.test(t));
  if (others.length > 0) return;
  if ((await nftTables()).includes(GUARD_TABLE)) await runCmd('nft', ['delete', 'table', 'ip', GUARD_TABLE]);
  if (existsSync(FORWARD_ORIG)) {
    const orig = readFileSync(FORWARD_ORIG, 'utf8').trim();
    if (orig === '0' || orig === '1') writeFileSync(IP_FORWARD, `${orig}\n`);
    rmSync(FORWARD_ORIG, { force: true });
  }
}

export function createSlot(p: SlotPlan, o: SlotScriptOptions = {}): Promise<string> {
  return runScript('create-slot', createSlotScript(p, o));
}

export function applyRules(p: SlotPlan, nftText: string): Promise<string> {
  return runStep('apply-rules', 'nsenter', [`--net=${p.netnsPath}`, 'nft', '-f', '-'], nftText);
}

export function recycleSlot(p: SlotPlan): Promise<string> {
  return runScript('recycle-slot', recycleScript(p));
}

export function destroySlot(p: SlotPlan): Promise<string> {
  return runScript('destroy-slot', destroySlotScript(p));
}

/** Names of this daemon's namespaces and host interfaces that exist now. */
export function ownObjects(id: string): { netns: string[]; links: string[] } {
  const list = (dir: string, prefix: string) => {
    try {
      return readdirSync(dir).filter((n) => n.startsWith(prefix));
    } catch {
      return [];
    }
  };
  return { netns: list(NETNS_DIR, netnsPrefix(id)), links: list(SYS_NET, hostIfPrefix(id)) };
}

/**
 * Removes every network object this daemon's id owns (a killed daemon's
 * namespaces, veths, taps and table), then restores forwarding if no FaaSCell
 * daemon needs it. Their VMMs died with the daemon (parent-death signal) or
 * are killed by the run-directory reaper first.
 */
export async function reapStale(o: PlanOptions): Promise<{ netns: number; links: number; table: boolean }> {
  const { netns, links } = ownObjects(o.id);
  for (const l of links) await runCmd('ip', ['link', 'del', l]);
  for (const n of netns) await runCmd('ip', ['netns', 'del', n]);
  let table = false;
  if (which('nft')) {
    const tables = await nftTables();
    if (tables.includes(hostTableName(o.id))) {
      await runCmd('nft', ['delete', 'table', 'ip', hostTableName(o.id)]);
      table = true;
    }
    await lastOneOut();
  }
  return { netns: netns.length, links: links.length, table };
}
