// The alarm source: OpenWhisk's /whisk.system/alarms feeds, built in. Each alarm
// (an entity of the OpenWhisk store, named after its trigger) gets a timer on the
// clock; when a firing falls due it is first claimed — the last firing dealt with
// is committed to SQLite (and, in a cluster, compare-and-set in the registry
// bucket, so one node fires it) — then the trigger is fired. Claim before fire: a
// daemon killed in between loses that firing rather than firing it twice, and a
// restarted daemon starts after the last firing claimed, never before it.
// Firings that fell due while the daemon was down: schedule.ts (`dueFirings`).

import type { Clock, TimerHandle } from '../../core/clock.js';
import type { Logger } from '../../core/logger.js';
import { stmt, type Db } from '../../registry/db.js';
import type { AlarmDoc, Entity, OwEntities } from '../openwhisk/entities.js';
import type { Source } from '../types.js';
import { dueFirings, nextFiring, type MissedFirings } from './schedule.js';

export interface AlarmOptions {
  /** a firing at most this late still fires (a timer delayed by load, a restart that short) */
  graceMs: number;
  /** firings that fell due longer ago (the daemon was down): skipped, or the latest fired once */
  missedFirings: MissedFirings;
}

export interface AlarmSourceDeps {
  entities: OwEntities;
  db: Db;
  clock: Clock;
  log: Logger;
  options: AlarmOptions;
  /** fire the trigger (its rules run); resolves when it is recorded */
  fire(trigger: string, doc: AlarmDoc, scheduledAt: number): Promise<void>;
  /** in a cluster: claim the firing cluster-wide (false: another node has it) */
  claimShared?(trigger: string, scheduledAt: number): Promise<boolean>;
  /** after a `once` alarm with deleteAfterFire fired */
  deleteTrigger?(trigger: string, withRules: boolean): Promise<void>;
}

export class AlarmSource implements Source {
  readonly name = 'alarms';
  private readonly timers = new Map<string, TimerHandle>();
  private running = false;
  /** evaluations in progress (stop waits for them: a firing claimed is also fired) */
  private readonly busy = new Set<Promise<void>>();

  constructor(private readonly d: AlarmSourceDeps) {
    d.entities.onChange((c) => {
      if (!this.running) return;
      if (c.kind === 'put' && c.entity.kind === 'alarm') this.schedule(c.entity.name);
      else if (c.kind === 'delete' && c.entityKind === 'alarm') {
        this.cancel(c.name);
        this.forget(c.name);
      }
    });
  }

  async start(): Promise<void> {
    this.running = true;
    for (const a of this.d.entities.list('alarm')) this.schedule(a.name);
  }

  async stop(): Promise<void> {
    this.running = false;
    for (const t of this.timers.values()) t.cancel();
    this.timers.clear();
    await Promise.all([...this.busy]);
  }

  /** The scheduled time of the last firing dealt with (fired or skipped), or just before the alarm was set. */
  lastFiring(a: Entity<'alarm'>): number {
    const r = stmt(this.d.db, 'SELECT last_fired_at FROM alarm_firings WHERE trigger = ?').get(a.name) as { last_fired_at: number } | undefined;
    // an alarm set (or updated) later than its last firing starts from then: a new schedule fires nothing of the past
    return Math.max(r?.last_fired_at ?? -Infinity, a.updatedAt - 1);
  }

  /** When the alarm fires next (for its READ lifecycle event and the status). */
  next(a: Entity<'alarm'>): number | undefined {
    return nextFiring(a.doc.spec, Math.max(this.lastFiring(a), this.wallNow() - this.d.options.graceMs));
  }

  private wallNow(): number {
    return this.d.clock.wallNow?.() ?? this.d.clock.now();
  }

  private cancel(name: string): void {
    this.timers.get(name)?.cancel();
    this.timers.delete(name);
  }

  /** Look at the alarm now: fire what is due, then set the timer for the next firing. */
  private schedule(name: string): void {
    this.cancel(name);
    if (!this.running) return;
    const p = this.evaluate(name).catch((err: unknown) => this.d.log.error('alarm: evaluation failed', { trigger: name, err: (err as Error).message }));
    this.busy.add(p);
    void p.finally(() => this.busy.delete(p));
  }

  private async evaluate(name: string): Promise<void> {
    const a = this.d.entities.get('alarm', name);
    if (!a || !this.running) return;
    const now = this.wallNow();
    const due = dueFirings(a.doc.spec, this.lastFiring(a), now, this.d.options.graceMs, this.d.options.missedFirings);
    if (due.upTo !== undefined && this.claimLocal(name, due.upTo)) {
      if (due.skipped > 0) {
        this.d.log.warn('alarm: firings missed while the daemon could not fire them were skipped', { trigger: name, skipped: due.skipped, atLeast: due.countCapped, policy: this.d.options.missedFirings });
      }
      if (due.fire !== undefined && (!this.d.claimShared || (await this.d.claimShared(name, due.fire)))) {
        await this.d.fire(name, a.doc, due.fire).catch((err: unknown) => this.d.log.error('alarm: firing the trigger failed', { trigger: name, err: (err as Error).message }));
        if (a.doc.spec.feed === 'once' && a.doc.deleteAfterFire !== false) await this.d.deleteTrigger?.(name, a.doc.deleteAfterFire === 'rules');
      }
    }
    if (!this.running || !this.d.entities.get('alarm', name)) return;
    const next = nextFiring(a.doc.spec, Math.max(this.lastFiring(a), now));
    if (next === undefined) return;
    this.cancel(name); // one timer per alarm, whichever evaluation ends last
    this.timers.set(name, this.d.clock.setTimer(Math.max(0, next - this.wallNow()), () => this.schedule(name)));
  }

  /** Commit `at` as the last firing dealt with, unless one at or after it already is (false: not ours to fire). */
  private claimLocal(name: string, at: number): boolean {
    return (
      stmt(this.d.db, 'INSERT INTO alarm_firings (trigger, last_fired_at) VALUES (?, ?) ON CONFLICT(trigger) DO UPDATE SET last_fired_at = excluded.last_fired_at WHERE last_fired_at < excluded.last_fired_at')
        .run(name, at).changes > 0
    );
  }

  /** Forget an alarm's firings (its trigger or the alarm was deleted). */
  forget(name: string): void {
    stmt(this.d.db, 'DELETE FROM alarm_firings WHERE trigger = ?').run(name);
  }
}
