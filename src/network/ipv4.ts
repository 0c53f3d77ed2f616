// IPv4 addresses and prefixes as plain numbers: parsing, formatting, ranges.
// Pure functions; the allowlist, the address plan and the host-route check use them.

/** An IPv4 network: `addr` is the network address (host bits cleared). */
export interface Cidr {
  addr: number;
  prefix: number;
}

/** An inclusive address range [lo, hi]. */
export interface Range {
  lo: number;
  hi: number;
}

const OCTET = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

/** Parses a dotted quad; undefined when it is not one (no leading zeros, no shorthand). */
export function parseIpv4(s: string): number | undefined {
  const parts = s.split('.');
  if (parts.length !== 4 || !parts.every((p) => OCTET.test(p))) return undefined;
  return parts.reduce((acc, p) => acc * 256 + Number(p), 0);
}

export function formatIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/**
 * Parses `A.B.C.D` or `A.B.C.D/N`. Host bits are cleared (`10.1.2.3/24` is
 * `10.1.2.0/24`); `hostBits` tells whether any were set.
 */
export function parseCidr(s: string): (Cidr & { hostBits: boolean }) | undefined {
  const slash = s.indexOf('/');
  const ip = parseIpv4(slash < 0 ? s : s.slice(0, slash));
  if (ip === undefined) return undefined;
  let prefix = 32;
  if (slash >= 0) {
    const p = s.slice(slash + 1);
    if (!/^(3[0-2]|[12]?\d)$/.test(p)) return undefined;
    prefix = Number(p);
  }
  const addr = (ip & maskOf(prefix)) >>> 0;
  return { addr, prefix, hostBits: addr !== ip };
}

export function formatCidr(c: Cidr): string {
  return c.prefix === 32 ? formatIpv4(c.addr) : `${formatIpv4(c.addr)}/${c.prefix}`;
}

export function rangeOf(c: Cidr): Range {
  const size = 2 ** (32 - c.prefix);
  return { lo: c.addr, hi: c.addr + size - 1 };
}

export function overlaps(a: Range, b: Range): boolean {
  return a.lo <= b.hi && b.lo <= a.hi;
}

export function contains(outer: Range, inner: Range): boolean {
  return outer.lo <= inner.lo && inner.hi <= outer.hi;
}

/** Sorted, disjoint, non-adjacent ranges covering exactly the union of the input. */
export function mergeRanges(ranges: Range[]): Range[] {
  const sorted = [...ranges].sort((a, b) => a.lo - b.lo || a.hi - b.hi);
  const out: Range[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last && r.lo <= last.hi + 1) last.hi = Math.max(last.hi, r.hi);
    else out.push({ ...r });
  }
  return out;
}

/** nft syntax for a range: a single address, or `lo-hi`. */
export function formatRange(r: Range): string {
  return r.lo === r.hi ? formatIpv4(r.lo) : `${formatIpv4(r.lo)}-${formatIpv4(r.hi)}`;
}
