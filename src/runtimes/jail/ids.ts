// Who a jailed VMM runs as. The set-up creates a system user and group
// (faascell-vmm) and reserves a block of subordinate uids for it in
// /etc/subuid. Each VMM gets a uid of its own from that block (VMMs of the
// same uid could signal or ptrace each other), and the user's group as its
// gid: a snapshot's RAM file is shared by every clone restored from it, and
// group access is how each clone's VMM may map it.

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface VmmIdentity {
  user: string;
  uid: number;
  gid: number;
}

export interface IdRange {
  first: number;
  count: number;
}

export class JailUserError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'JailUserError';
  }
}

/** Looks a user up through NSS (getent), so LDAP/sssd users work as well as /etc/passwd. */
export function lookupUser(user: string): VmmIdentity | undefined {
  let line: string;
  try {
    line = execFileSync('getent', ['passwd', user], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
  const f = line.split(':');
  const uid = Number(f[2]);
  const gid = Number(f[3]);
  if (f.length < 4 || !Number.isInteger(uid) || !Number.isInteger(gid)) return undefined;
  return { user: f[0]!, uid, gid };
}

/** A group's gid through NSS (getent), undefined when there is no such group (the API socket's api.socketGroup). */
export function lookupGroup(group: string): number | undefined {
  try {
    const gid = Number(execFileSync('getent', ['group', group], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).split(':')[2]);
    return Number.isInteger(gid) ? gid : undefined;
  } catch {
    return undefined;
  }
}

/** The first "name:first:count" entry of /etc/subuid (or a given text) for `user`, by name or uid. */
export function parseSubIds(text: string, user: string, uid?: number): IdRange | undefined {
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const [owner, first, count] = line.split(':');
    if (owner !== user && (uid === undefined || owner !== String(uid))) continue;
    const r = { first: Number(first), count: Number(count) };
    if (Number.isInteger(r.first) && Number.isInteger(r.count) && r.first > 0 && r.count > 0) return r;
  }
  return undefined;
}

export function readSubUids(user: string, uid: number, file = '/etc/subuid'): IdRange | undefined {
  try {
    return parseSubIds(readFileSync(file, 'utf8'), user, uid);
  } catch {
    return undefined;
  }
}

/**
 * Hands out uids from a range, never two to live VMs of this daemon. The start
 * is random so that two daemons sharing the range rarely collide (documented).
 */
export class UidAllocator {
  private readonly inUse = new Set<number>();

  constructor(
    readonly range: IdRange,
    private readonly random: () => number = Math.random,
  ) {
    if (!Number.isInteger(range.first) || !Number.isInteger(range.count) || range.first <= 0 || range.count <= 0) {
      throw new JailUserError(`invalid uid range ${JSON.stringify(range)}`);
    }
  }

  allocate(): number {
    if (this.inUse.size >= this.range.count) throw new JailUserError(`all ${this.range.count} VMM uids from ${this.range.first} are in use`);
    const start = Math.floor(this.random() * this.range.count) % this.range.count;
    for (let i = 0; i < this.range.count; i++) {
      const uid = this.range.first + ((start + i) % this.range.count);
      if (!this.inUse.has(uid)) {
        this.inUse.add(uid);
        return uid;
      }
    }
    throw new JailUserError('no free VMM uid');
  }

  release(uid: number): void {
    this.inUse.delete(uid);
  }

  get used(): number {
    return this.inUse.size;
  }
}
