// Cross-field checks of the `network` configuration (the schema checks each field).

import { formatCidr, overlaps, parseCidr, parseIpv4, rangeOf } from './ipv4.js';
import { GUEST_SUBNET } from './plan.js';

export function networkConfigProblem(n: { hostCidr: string; dns?: string }): { key: string; message: string } | undefined {
  const host = parseCidr(n.hostCidr);
  if (!host) return { key: 'network.hostCidr', message: 'must be an IPv4 CIDR' };
  if (host.hostBits) return { key: 'network.hostCidr', message: `has host bits set (did you mean ${formatCidr(host)}?)` };
  if (overlaps(rangeOf(host), rangeOf(GUEST_SUBNET))) return { key: 'network.hostCidr', message: `must not overlap the guests' own link ${formatCidr(GUEST_SUBNET)}` };
  if (n.dns !== undefined) {
    const d = parseIpv4(n.dns);
    if (d === undefined) return { key: 'network.dns', message: 'must be an IPv4 address' };
    const r = { lo: d, hi: d };
    if (overlaps(r, rangeOf(host))) return { key: 'network.dns', message: `must not be inside network.hostCidr ${formatCidr(host)}` };
    if (overlaps(r, rangeOf(GUEST_SUBNET))) return { key: 'network.dns', message: `must not be inside the guests' own link ${formatCidr(GUEST_SUBNET)}` };
  }
  return undefined;
}
