// A function's network specification: `none` (the default: no way out of the VM)
// or `egress` with an allowlist of destinations. Pure parsing and validation;
// bad input becomes a 400 naming the exact field (network.allow[2]).

import { createHash } from 'node:crypto';
import { badRequest } from '../core/errors.js';
import { type Cidr, contains, formatCidr, parseCidr, rangeOf } from './ipv4.js';
import { GUEST_SUBNET } from './plan.js';

export type NetworkMode = 'none' | 'egress';

/** As stored with the function: the allowlist in canonical text form. */
export interface NetworkSpec {
  mode: NetworkMode;
  allow: string[];
}

export type Protocol = 'tcp' | 'udp' | 'any';

/** One parsed allowlist entry. */
export interface AllowRule {
  net: Cidr;
  proto: Protocol;
  /** inclusive port range; absent: every port (and, for `any`, every protocol incl. ICMP) */
  ports?: { from: number; to: number };
}

export const MAX_ALLOW_ENTRIES = 64;

export type ParsedEntry = { ok: true; rule: AllowRule } | { ok: false; reason: string };

/**
 * `[tcp://|udp://]A.B.C.D[/N][:PORT[-PORT]]`, e.g. `10.0.0.5`, `10.0.0.0/8`,
 * `tcp://10.0.0.5:443`, `10.0.0.5:8000-8100` (tcp and udp), `0.0.0.0/0` (anything).
 */
export function parseAllowEntry(text: string): ParsedEntry {
  if (typeof text !== 'string') return { ok: false, reason: 'must be a string' };
  let s = text.trim();
  let proto: Protocol = 'any';
  const m = /^([a-z]+):\/\//i.exec(s);
  if (m) {
    const p = m[1]!.toLowerCase();
    if (p !== 'tcp' && p !== 'udp') return { ok: false, reason: `unknown protocol "${m[1]}" (tcp or udp, or none for both plus ICMP)` };
    proto = p;
    s = s.slice(m[0].length);
  }
  if ((s.match(/:/g) ?? []).length > 1 || s.startsWith('[')) return { ok: false, reason: 'IPv6 destinations are not supported (guests have IPv4 only)' };
  let portText: string | undefined;
  const colon = s.indexOf(':');
  if (colon >= 0) {
    portText = s.slice(colon + 1);
    s = s.slice(0, colon);
  }
  if (s.length === 0) return { ok: false, reason: 'no address' };
  if (/[a-z]/i.test(s) && !s.includes('/')) {
    return { ok: false, reason: `"${s}" is not an IPv4 address: host names are not supported (DNS answers change; give the address or a CIDR)` };
  }
  const net = parseCidr(s);
  if (!net) return { ok: false, reason: `"${s}" is not an IPv4 address or CIDR (A.B.C.D or A.B.C.D/N)` };
  if (contains(rangeOf(GUEST_SUBNET), rangeOf(net))) {
    return { ok: false, reason: `${formatCidr(net)} is inside the guest's own link ${formatCidr(GUEST_SUBNET)}` };
  }
  const rule: AllowRule = { net: { addr: net.addr, prefix: net.prefix }, proto };
  if (portText !== undefined) {
    const pm = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(portText);
    if (!pm) return { ok: false, reason: `port "${portText}" must be a number or a range like 8000-8100` };
    const from = Number(pm[1]);
    const to = pm[2] === undefined ? from : Number(pm[2]);
    if (from < 1 || to > 65535 || from > to) return { ok: false, reason: `ports must be within 1-65535, low-high (got ${portText})` };
    rule.ports = { from, to };
  }
  return { ok: true, rule };
}

export function formatAllowRule(r: AllowRule): string {
  const proto = r.proto === 'any' ? '' : `${r.proto}://`;
  const ports = r.ports ? `:${r.ports.from === r.ports.to ? r.ports.from : `${r.ports.from}-${r.ports.to}`}` : '';
  return `${proto}${formatCidr(r.net)}${ports}`;
}

/**
 * Validates a function's `network` input and returns it in canonical form.
 * Throws a bad_request FaasError naming the field.
 */
export function normalizeNetworkSpec(input: unknown, field = 'network'): NetworkSpec {
  if (input === undefined || input === null) return { mode: 'none', allow: [] };
  if (typeof input !== 'object' || Array.isArray(input)) throw badRequest(field, 'must be an object {mode, allow}');
  const o = input as Record<string, unknown>;
  for (const k of Object.keys(o)) if (k !== 'mode' && k !== 'allow') throw badRequest(`${field}.${k}`, 'unknown key (mode, allow)');
  const mode = o.mode ?? 'none';
  if (mode !== 'none' && mode !== 'egress') throw badRequest(`${field}.mode`, `must be "none" or "egress" (got ${JSON.stringify(mode)})`);
  const allowIn = o.allow ?? [];
  if (!Array.isArray(allowIn)) throw badRequest(`${field}.allow`, 'must be an array of destinations');
  if (mode === 'none') {
    if (allowIn.length > 0) throw badRequest(`${field}.allow`, 'destinations need mode "egress"');
    return { mode: 'none', allow: [] };
  }
  if (allowIn.length === 0) throw badRequest(`${field}.allow`, 'egress needs at least one destination (0.0.0.0/0 for any)');
  if (allowIn.length > MAX_ALLOW_ENTRIES) throw badRequest(`${field}.allow`, `at most ${MAX_ALLOW_ENTRIES} destinations (got ${allowIn.length})`);
  const allow: string[] = [];
  allowIn.forEach((e, i) => {
    const r = parseAllowEntry(e as string);
    if (!r.ok) throw badRequest(`${field}.allow[${i}]`, r.reason);
    const canon = formatAllowRule(r.rule);
    if (!allow.includes(canon)) allow.push(canon);
  });
  return { mode: 'egress', allow };
}

/** The parsed rules of a stored (canonical) spec. */
export function rulesOf(spec: NetworkSpec): AllowRule[] {
  const out: AllowRule[] = [];
  for (const e of spec.allow) {
    const r = parseAllowEntry(e);
    if (r.ok) out.push(r.rule);
  }
  return out;
}

/**
 * What makes two VMs of one function interchangeable network-wise: '' without
 * network; otherwise a digest of the allowlist (a VM's rules are set when it starts).
 */
export function networkShapeKey(spec: NetworkSpec | undefined): string {
  if (!spec || spec.mode !== 'egress') return '';
  return `+net${createHash('sha256').update(spec.allow.join('\n')).digest('hex').slice(0, 8)}`;
}
