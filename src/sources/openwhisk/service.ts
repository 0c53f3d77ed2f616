// What the OpenWhisk Source keeps beside its routes: the entity store, the results
// it keeps per activation, the invoker, and the alarm source that fires triggers
// on a schedule. The daemon makes it before its APIs (the cluster's entity sync
// follows the store; the alarm source is one of the daemon's Sources).

import type { ActorRef } from '../../core/actor.js';
import { realClock, type Clock } from '../../core/clock.js';
import { silentLogger, type Logger } from '../../core/logger.js';
import type { DispatcherMsg } from '../../dispatcher/dispatcher.js';
import type { PerfMsg } from '../../perf/perf-manager.js';
import type { Db } from '../../registry/db.js';
import type { Registry } from '../../registry/registry.js';
import type { RuntimeName } from '../../runtimes/types.js';
import { AlarmSource, type AlarmOptions } from '../alarms/source.js';
import { OwEntities } from './entities.js';
import { OwInvoker } from './invoker.js';
import { ResultStore } from './results.js';

export interface OpenWhiskServiceDeps {
  db: Db;
  registry: Registry;
  /** the daemon's store (the cluster sync follows it); made here when absent */
  entities?: OwEntities;
  dispatcher: ActorRef<DispatcherMsg>;
  perf: ActorRef<PerfMsg>;
  /** activation records kept (activations.retain): results are kept as long */
  retain: number;
  namespace: string;
  runtime?: RuntimeName;
  clock?: Clock;
  log?: Logger;
  alarms?: AlarmOptions;
  /** in a cluster: claim an alarm's firing cluster-wide, so that one node fires it */
  claimAlarm?(trigger: string, scheduledAt: number): Promise<boolean>;
}

export const DEFAULT_ALARM_OPTIONS: AlarmOptions = { graceMs: 60_000, missedFirings: 'skip' };

export class OpenWhiskService {
  readonly entities: OwEntities;
  readonly results: ResultStore;
  readonly invoker: OwInvoker;
  readonly alarms: AlarmSource;
  readonly namespace: string;
  private readonly log: Logger;

  constructor(d: OpenWhiskServiceDeps) {
    this.namespace = d.namespace;
    this.log = d.log ?? silentLogger;
    this.entities = d.entities ?? new OwEntities(d.db);
    this.results = new ResultStore(d.db, d.retain);
    this.invoker = new OwInvoker({ registry: d.registry, entities: this.entities, dispatcher: d.dispatcher, perf: d.perf, results: this.results, namespace: d.namespace, runtime: d.runtime ?? 'qemu' });
    // a function and a sequence never share a name (the native API does not know sequences)
    d.registry.guardNames((n) => (this.entities.get('sequence', n) ? `'${n}' is an OpenWhisk sequence` : undefined));
    this.alarms = new AlarmSource({
      entities: this.entities,
      db: d.db,
      clock: d.clock ?? realClock,
      log: this.log.child({ component: 'alarms' }),
      options: d.alarms ?? DEFAULT_ALARM_OPTIONS,
      fire: async (trigger, doc, scheduledAt) => {
        const t = this.entities.get('trigger', trigger);
        if (!t) return this.log.warn('alarm: its trigger no longer exists', { trigger });
        const id = await this.invoker.fire(t, doc.payload, d.namespace, scheduledAt);
        this.log.info('alarm fired', { trigger, activationId: id ?? null });
      },
      claimShared: d.claimAlarm ? (trigger, at) => d.claimAlarm!(trigger, at) : undefined,
      deleteTrigger: async (trigger, withRules) => void (await this.deleteTrigger(trigger, withRules)),
    });
  }

  /** Delete a trigger and its alarm (and, `withRules`, the rules on it). */
  async deleteTrigger(name: string, withRules: boolean): Promise<boolean> {
    if (withRules) for (const r of this.entities.list('rule')) if (r.doc.trigger === name) this.entities.delete('rule', r.name);
    this.entities.delete('alarm', name);
    const gone = this.entities.delete('trigger', name);
    await this.entities.synced();
    return gone;
  }
}
