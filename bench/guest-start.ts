// faascell bench guest-start: how long a cold-booted guest takes to bring the agent
// up, by stage, from the agent's ready message (guest uptime at /init, at the first
// line of the agent's JavaScript, at ready) and the host's clock (QEMU spawn ->
// ready). Variants boot interleaved (A B A B …) so machine noise hits all alike.
import fs from 'node:fs';
import { machine, ms, summarize, table, type Summary } from './common.js';
import { benchTmp, bootHello, pickVariants, prepareVariants } from './guest.js';

export interface GuestStartResult {
  machine: Record<string, string | number>;
  boots: number;
  variants: Array<{ variant: string; about: string; stages: Record<string, Summary> }>;
}

export const STAGES = [
  'QEMU spawn → agent ready (host)',
  'kernel: guest uptime at /init',
  '/init → agent JavaScript starts',
  '  /init script (mounts, devices, helper)',
  '  Node start → agent JavaScript',
  'agent JavaScript → ready',
  '/init → agent ready',
] as const;

export async function benchGuestStart(opts: { boots: number; variants?: string[]; log?: (s: string) => void }): Promise<GuestStartResult> {
  const log = opts.log ?? ((s: string) => console.error(s));
  const rigs = await prepareVariants(pickVariants(opts.variants, ['baseline', 'tuned']), log);
  const tmp = benchTmp('fc-start-');
  const samples = rigs.map(() => Object.fromEntries(STAGES.map((s) => [s, [] as number[]])) as Record<string, number[]>);
  try {
    for (let i = 0; i < opts.boots; i++) {
      for (const [k, rig] of rigs.entries()) {
        const h = await bootHello(rig, tmp, { init: false });
        await h.vm.stop();
        const u = h.ready.uptimeMs;
        const s = samples[k]!;
        s[STAGES[0]]!.push(h.readyMs);
        s[STAGES[1]]!.push(u.init);
        s[STAGES[2]]!.push(u.agentStart - u.init);
        if (u.exec !== undefined) {
          s[STAGES[3]]!.push(u.exec - u.init);
          s[STAGES[4]]!.push(u.agentStart - u.exec);
        }
        s[STAGES[5]]!.push(u.ready - u.agentStart);
        s[STAGES[6]]!.push(u.ready - u.init);
        log(`  boot ${i + 1}/${opts.boots} ${rig.variant.name}: ready after ${ms(h.readyMs)}, /init -> ready ${ms(u.ready - u.init)}`);
      }
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  return {
    machine: machine(),
    boots: opts.boots,
    variants: rigs.map((r, k) => ({ variant: r.variant.name, about: r.variant.about, stages: Object.fromEntries(Object.entries(samples[k]!).map(([s, xs]) => [s, summarize(xs)])) })),
  };
}

export function formatGuestStart(r: GuestStartResult): string {
  return [
    `machine: ${JSON.stringify(r.machine)}`,
    `${r.boots} cold boots per variant, interleaved; median / p99`,
    ...r.variants.map((v) => `  ${v.variant}: ${v.about}`),
    '',
    table(
      ['stage', ...r.variants.map((v) => v.variant)],
      STAGES.map((s) => [s, ...r.variants.map((v) => `${ms(v.stages[s]!.median)} / ${ms(v.stages[s]!.p99)}`)]),
    ),
  ].join('\n');
}
