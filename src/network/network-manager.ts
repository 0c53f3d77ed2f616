// NetworkManager: allocates what connects host and guest, and reaps what a
// killed daemon left behind.
//
// Every VM gets a private run directory (QMP and agent channel sockets, console
// log, pid file). A VM of a function with `network: egress` also gets a slot:
// its own network namespace holding a tap device (the VM's virtio-net NIC) and
// the function's allowlist, joined to the host by a veth pair (docs/network.md).
// Slots are set up ahead in a small pool and recycled after a VM stops, so
// network set-up is off a start's critical path. Functions without networking
// get no slot: their NIC has no peer at all.

import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { Actor, errText, type Reply } from '../core/actor.js';
import type { VmNetworkAttachment } from '../runtimes/types.js';
import { NetworkSetupError } from './exec.js';
import * as realHost from './host.js';
import { type Cidr, formatCidr } from './ipv4.js';
import { GUEST_ADDRESS, type PlanOptions, type SlotPlan, TAP, maxSlots, protectedRanges, rulesTransaction, slotPlan } from './plan.js';
import { type NetworkSpec, rulesOf } from './spec.js';

/** sun_path is 108 bytes on Linux, including the NUL */
const MAX_SOCKET_PATH = 107;
const LONGEST_SOCKET_NAME = 'channel.sock';
/** the host's own addresses are re-read at most this often (they feed the allowlist's protected set) */
const HOST_ADDR_TTL_MS = 10_000;

/** A VM's network, as the runtime driver and the activation record see it. */
export interface VmNetwork extends VmNetworkAttachment {
  slot: number;
  /** what the guest's traffic is translated to on the host */
  hostSideAddress: string;
  guestAddress: string;
  /** time the allocation took, and whether a pooled slot served it */
  setupMs: number;
  pooled: boolean;
}

export interface VmEndpoints {
  vmId: string;
  runDir: string;
  /** set for `network: egress` */
  network?: VmNetwork;
}

export interface NetworkOptions {
  /** one /30 per VM with networking; must not overlap the host's routes */
  hostCidr: Cidr;
  /** resolver the guests' DNS queries are forwarded to (none: names do not resolve) */
  dns?: string;
  /** idle slots kept ready */
  poolSize: number;
  /** set the host up and fill the pool at start, not at the first egress function */
  prewarm: boolean;
  /** owner of the tap devices (for a VMM that drops root) */
  tapUser?: number;
  /** 6 hex characters naming this daemon's objects; default: from the run directory */
  id?: string;
  /** the host operations (default: the real ones of host.ts; unit tests pass stand-ins) */
  ops?: HostOps;
}

/** What the manager does to the host; host.ts has the real implementation. */
export interface HostOps {
  hostUp(o: PlanOptions): Promise<unknown>;
  hostDown(o: PlanOptions): Promise<unknown>;
  reapStale(o: PlanOptions): Promise<{ netns: number; links: number; table: boolean }>;
  createSlot(p: SlotPlan, o: { tapUser?: number }): Promise<unknown>;
  applyRules(p: SlotPlan, nftText: string): Promise<unknown>;
  recycleSlot(p: SlotPlan): Promise<unknown>;
  destroySlot(p: SlotPlan): Promise<unknown>;
  hostLocalAddresses(): Promise<number[]>;
  /** used slots can be recycled (conntrack is installed); otherwise they are destroyed */
  canRecycle(): boolean;
}

export const REAL_HOST_OPS: HostOps = {
  hostUp: realHost.hostUp,
  hostDown: realHost.hostDown,
  reapStale: realHost.reapStale,
  createSlot: realHost.createSlot,
  applyRules: realHost.applyRules,
  recycleSlot: realHost.recycleSlot,
  destroySlot: realHost.destroySlot,
  hostLocalAddresses: realHost.hostLocalAddresses,
  canRecycle: realHost.hasConntrack,
};

export interface NetworkStatus {
  enabled: boolean;
  host: 'down' | 'starting' | 'up' | 'failed';
  hostError?: string;
  hostCidr?: string;
  id: string;
  slots: Record<SlotState, number>;
  waiting: number;
  poolSize: number;
  capacity: number;
}

type SlotState = 'creating' | 'free' | 'applying' | 'used' | 'recycling' | 'destroying';

interface Slot {
  plan: SlotPlan;
  state: SlotState;
  vmId?: string;
  /** the VM that asked for it stopped before its rules were in place */
  releasedEarly?: boolean;
}

interface Waiter {
  vmId: string;
  runDir: string;
  spec: NetworkSpec;
  reply: Reply<VmEndpoints>;
  t0: number;
  pooled: boolean;
}

export type NetworkMsg =
  | { kind: 'allocate'; vmId: string; fn?: string; network?: NetworkSpec; reply: Reply<VmEndpoints> }
  | { kind: 'release'; vmId: string }
  | { kind: 'list'; reply: Reply<string[]> }
  /** an egress function exists: set the host up and fill the pool now */
  | { kind: 'prepare' }
  | { kind: 'status'; reply: Reply<NetworkStatus> }
  // results of the manager's own background steps
  | { kind: 'hostResult'; err?: unknown }
  | { kind: 'slotCreated'; slot: number; err?: unknown }
  | { kind: 'rulesApplied'; slot: number; waiter: Waiter; err?: unknown }
  | { kind: 'slotRecycled'; slot: number; err?: unknown }
  | { kind: 'slotDestroyed'; slot: number };

export function daemonNetworkId(runRoot: string): string {
  return createHash('sha256').update(path.resolve(runRoot)).digest('hex').slice(0, 6);
}

export class NetworkManager extends Actor<NetworkMsg> {
  private readonly live = new Set<string>();
  private readonly id: string;
  private readonly plan: PlanOptions | undefined;
  private readonly slots = new Map<number, Slot>();
  private readonly waiters: Waiter[] = [];
  private readonly tasks = new Set<Promise<unknown>>();
  private host: NetworkStatus['host'] = 'down';
  private hostError: unknown;
  private hostAddrs: { at: number; addrs: number[] } | undefined;
  private readonly ops: HostOps;
  private readonly recycle: boolean;

  constructor(
    private readonly runRoot: string,
    private readonly net?: NetworkOptions,
  ) {
    super();
    const probe = path.join(runRoot, 'vm-0123456789ab', LONGEST_SOCKET_NAME);
    if (Buffer.byteLength(probe) > MAX_SOCKET_PATH) {
      throw new Error(`state directory path too long for unix sockets (${probe.length} > ${MAX_SOCKET_PATH} bytes): choose a shorter stateDir`);
    }
    this.id = net?.id ?? daemonNetworkId(runRoot);
    this.plan = net ? { id: this.id, hostCidr: net.hostCidr } : undefined;
    this.ops = net?.ops ?? REAL_HOST_OPS;
    this.recycle = this.ops.canRecycle();
  }

  protected override async preStart(): Promise<void> {
    mkdirSync(this.runRoot, { recursive: true, mode: 0o700 });
    const reaped = reapStaleRunDirs(this.runRoot);
    if (reaped.dirs > 0) this.log.warn('reaped VMs left behind by a previous daemon', reaped);
    if (!this.plan) return;
    try {
      const n = await this.ops.reapStale(this.plan);
      if (n.netns + n.links > 0 || n.table) this.log.warn('reaped network objects left behind by a previous daemon', n);
    } catch (err) {
      this.log.warn('could not reap stale network objects', { err: errText(err) });
    }
    if (this.net?.prewarm) this.prepare();
  }

  private stopping = false;

  protected override async postStop(): Promise<void> {
    this.stopping = true;
    // background steps first, so none creates something after the teardown
    while (this.tasks.size > 0) await Promise.allSettled([...this.tasks]);
    for (const w of this.waiters.splice(0)) w.reply.reject(new NetworkSetupError('create-slot', 'daemon stopping'));
    const all = [...this.slots.values()];
    this.slots.clear();
    await Promise.allSettled(all.map((s) => this.ops.destroySlot(s.plan)));
    if (this.plan) {
      await this.ops.hostDown(this.plan).catch((err: unknown) => this.log.error('network teardown failed', { err: errText(err) }));
    }
    this.host = 'down';
  }

  protected async receive(msg: NetworkMsg): Promise<void> {
    switch (msg.kind) {
      case 'allocate':
        return this.allocate(msg);
      case 'release':
        this.live.delete(msg.vmId);
        // the driver removes the directory on stop; this is the safety net
        rmSync(path.join(this.runRoot, msg.vmId), { recursive: true, force: true });
        this.releaseSlot(msg.vmId);
        return;
      case 'list':
        msg.reply.resolve([...this.live]);
        return;
      case 'prepare':
        this.prepare();
        return;
      case 'status':
        msg.reply.resolve(this.status());
        return;
      case 'hostResult':
        if (msg.err === undefined) {
          this.host = 'up';
          this.hostError = undefined;
        } else {
          this.host = 'failed';
          this.hostError = msg.err;
          this.log.error('network host set-up failed', { err: errText(msg.err) });
        }
        this.pump();
        if (this.host === 'failed') this.host = 'down'; // the next egress start tries again
        return;
      case 'slotCreated':
        return this.slotCreated(msg.slot, msg.err);
      case 'rulesApplied':
        return this.rulesApplied(msg.slot, msg.waiter, msg.err);
      case 'slotRecycled': {
        const s = this.slots.get(msg.slot);
        if (!s) return;
        if (msg.err !== undefined) {
          this.log.warn('recycling a network slot failed; removing it', { slot: msg.slot, err: errText(msg.err) });
          this.destroy(s);
          return;
        }
        s.state = 'free';
        s.vmId = undefined;
        this.pump();
        return;
      }
      case 'slotDestroyed':
        this.slots.delete(msg.slot);
        this.pump();
        return;
    }
  }

  // ---- allocation ----------------------------------------------------------

  private allocate(msg: Extract<NetworkMsg, { kind: 'allocate' }>): void {
    const runDir = path.join(this.runRoot, msg.vmId);
    mkdirSync(runDir, { recursive: true, mode: 0o700 });
    this.live.add(msg.vmId);
    // a VM id that already holds a slot starts a new VMM (a snapshot source continues
    // from its own snapshot): it gets a clean slot, the old one is recycled
    this.releaseSlot(msg.vmId);
    if (msg.network?.mode !== 'egress') {
      msg.reply.resolve({ vmId: msg.vmId, runDir });
      return;
    }
    if (!this.net || !this.plan) {
      msg.reply.reject(new NetworkSetupError('host-setup', 'this daemon was started without network support'));
      return;
    }
    const free = [...this.slots.values()].some((s) => s.state === 'free');
    this.waiters.push({ vmId: msg.vmId, runDir, spec: msg.network, reply: msg.reply, t0: performance.now(), pooled: free && this.host === 'up' });
    this.pump();
  }

  /** Serve waiters from free slots, create slots for the rest, keep the pool filled. */
  private pump(): void {
    if (!this.net || !this.plan) return;
    if (this.host === 'down' && (this.waiters.length > 0 || this.wantPool)) {
      this.host = 'starting';
      this.spawnTask(this.ops.hostUp(this.plan), (err) => ({ kind: 'hostResult', err }));
      return;
    }
    if (this.host === 'starting') return;
    if (this.host === 'failed') {
      const err = asError(this.hostError);
      for (const w of this.waiters.splice(0)) w.reply.reject(err);
      return;
    }
    for (;;) {
      const w = this.waiters[0];
      const s = [...this.slots.values()].find((x) => x.state === 'free');
      if (!w || !s) break;
      this.waiters.shift();
      this.assign(s, w);
    }
    const creating = this.count('creating');
    const want = this.waiters.length + (this.wantPool ? this.net.poolSize : 0) - creating - this.count('free');
    for (let i = 0; i < want; i++) if (!this.create()) break;
    if (this.waiters.length > 0 && this.count('creating') === 0 && this.count('recycling') === 0 && this.count('destroying') === 0) {
      const err = new NetworkSetupError('create-slot', `no free network slot: network.hostCidr ${formatCidr(this.net.hostCidr)} holds ${maxSlots(this.net.hostCidr)} VMs with networking`);
      for (const w of this.waiters.splice(0)) w.reply.reject(err);
    }
    // more idle slots than the pool wants (a burst is over): remove the surplus
    let surplus = this.count('free') - (this.wantPool ? this.net.poolSize : 0);
    for (const s of this.slots.values()) {
      if (surplus <= 0) break;
      if (s.state === 'free') {
        this.destroy(s);
        surplus--;
      }
    }
  }

  /** The pool is kept filled once an egress function exists (or prewarm). */
  private wantPool = false;

  private prepare(): void {
    if (!this.net) return;
    this.wantPool = true;
    this.pump();
  }

  private create(): boolean {
    const plan = this.plan!;
    const cap = maxSlots(plan.hostCidr);
    let n = 0;
    while (n < cap && this.slots.has(n)) n++;
    if (n >= cap) return false;
    const s: Slot = { plan: slotPlan(plan, n), state: 'creating' };
    this.slots.set(n, s);
    this.spawnTask(this.ops.createSlot(s.plan, { tapUser: this.net?.tapUser }), (err) => ({ kind: 'slotCreated', slot: n, err }));
    return true;
  }

  private slotCreated(slot: number, err: unknown): void {
    const s = this.slots.get(slot);
    if (!s) return;
    if (err !== undefined) {
      this.log.error('creating a network slot failed', { slot, err: errText(err) });
      // a waiter must not wait for a slot that will never come
      const w = this.waiters.shift();
      w?.reply.reject(asError(err));
      s.state = 'destroying';
      this.spawnTask(this.ops.destroySlot(s.plan), () => ({ kind: 'slotDestroyed', slot }));
      return;
    }
    s.state = 'free';
    this.pump();
  }

  private assign(s: Slot, w: Waiter): void {
    s.state = 'applying';
    s.vmId = w.vmId;
    s.releasedEarly = false;
    const work = this.protectedSet().then((prot) =>
      this.ops.applyRules(s.plan, rulesTransaction({ rules: rulesOf(w.spec), hostCidr: this.plan!.hostCidr, protected: prot, dns: this.net!.dns })),
    );
    this.spawnTask(work, (err) => ({ kind: 'rulesApplied', slot: s.plan.slot, waiter: w, err }));
  }

  private async protectedSet(): Promise<ReturnType<typeof protectedRanges>> {
    const now = Date.now();
    if (!this.hostAddrs || now - this.hostAddrs.at > HOST_ADDR_TTL_MS) {
      this.hostAddrs = { at: now, addrs: await this.ops.hostLocalAddresses().catch(() => this.hostAddrs?.addrs ?? []) };
    }
    return protectedRanges(this.plan!.hostCidr, this.hostAddrs.addrs);
  }

  private rulesApplied(slot: number, w: Waiter, err: unknown): void {
    const s = this.slots.get(slot);
    if (!s) return;
    if (err !== undefined) {
      w.reply.reject(asError(err));
      this.destroy(s);
      return;
    }
    s.state = 'used';
    const p = s.plan;
    w.reply.resolve({
      vmId: w.vmId,
      runDir: w.runDir,
      network: {
        netnsPath: p.netnsPath,
        tap: TAP,
        slot: p.slot,
        hostSideAddress: p.nsAddr,
        guestAddress: GUEST_ADDRESS,
        setupMs: performance.now() - w.t0,
        pooled: w.pooled,
      },
    });
    if (s.releasedEarly) this.releaseSlot(w.vmId);
  }

  // ---- release ---------------------------------------------------------------

  private releaseSlot(vmId: string): void {
    for (const s of this.slots.values()) {
      if (s.vmId !== vmId) continue;
      if (s.state === 'applying') {
        s.releasedEarly = true;
        continue;
      }
      if (s.state !== 'used') continue;
      s.vmId = undefined;
      if (!this.recycle) {
        this.destroy(s);
        continue;
      }
      s.state = 'recycling';
      const slot = s.plan.slot;
      this.spawnTask(this.ops.recycleSlot(s.plan), (err) => ({ kind: 'slotRecycled', slot, err }));
    }
  }

  private destroy(s: Slot): void {
    s.state = 'destroying';
    const slot = s.plan.slot;
    this.spawnTask(this.ops.destroySlot(s.plan), () => ({ kind: 'slotDestroyed', slot }));
  }

  // ---- helpers ---------------------------------------------------------------

  private count(state: SlotState): number {
    let n = 0;
    for (const s of this.slots.values()) if (s.state === state) n++;
    return n;
  }

  /** Runs a host step in the background; its outcome comes back as a message. */
  private spawnTask(p: Promise<unknown>, done: (err: unknown) => NetworkMsg): void {
    // once stopping, postStop waits for these and removes everything itself
    const tell = (m: NetworkMsg) => {
      if (!this.stopping) this.self.tell(m);
    };
    const t = p.then(
      () => tell(done(undefined)),
      (err: unknown) => tell(done(err ?? new Error('failed'))),
    );
    this.tasks.add(t);
    void t.finally(() => this.tasks.delete(t));
  }

  private status(): NetworkStatus {
    const slots: Record<SlotState, number> = { creating: 0, free: 0, applying: 0, used: 0, recycling: 0, destroying: 0 };
    for (const s of this.slots.values()) slots[s.state]++;
    return {
      enabled: this.net !== undefined,
      host: this.host,
      hostError: this.hostError === undefined ? undefined : errText(this.hostError),
      hostCidr: this.net ? formatCidr(this.net.hostCidr) : undefined,
      id: this.id,
      slots,
      waiting: this.waiters.length,
      poolSize: this.net?.poolSize ?? 0,
      capacity: this.net ? maxSlots(this.net.hostCidr) : 0,
    };
  }
}

/**
 * Kill VMM processes whose pid file is in a run directory nobody owns any more
 * (the daemon that made them was killed) and remove the directories. A pid is
 * only killed if its command line still names that run directory, so a reused
 * pid is never hit.
 */
export function reapStaleRunDirs(runRoot: string): { dirs: number; killed: number } {
  let dirs = 0;
  let killed = 0;
  let entries: string[];
  try {
    entries = readdirSync(runRoot);
  } catch {
    return { dirs, killed };
  }
  for (const name of entries) {
    const dir = path.join(runRoot, name);
    for (const pidFile of ['vmm.pid', 'qemu.pid', 'firecracker.pid']) {
      let pid: number;
      try {
        pid = parseInt(readFileSync(path.join(dir, pidFile), 'utf8').trim(), 10);
      } catch {
        continue;
      }
      if (!Number.isInteger(pid) || pid <= 1) continue;
      try {
        const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
        if (cmdline.includes(dir)) {
          process.kill(pid, 'SIGKILL');
          killed++;
        }
      } catch {
        // process already gone
      }
    }
    rmSync(dir, { recursive: true, force: true });
    dirs++;
  }
  return { dirs, killed };
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(errText(err));
}
