// Commands whose implementation lives outside the CLI: benchmarks, simulator, replay.
import type { Command } from 'commander';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const list = (v: string): number[] => v.split(',').map((x) => parseInt(x, 10)).filter((x) => x > 0);

export function registerExtraCommands(p: Command): void {
  p.command('simulate')
    .description('discrete-event simulation of one node running the real policy objects over a trace')
    .requiredOption('--trace <dirOrFile>', 'Azure Functions 2019 day directory/file, or a FaaSRail spec')
    .option('--format <format>', 'azure | faasrail', 'azure')
    .option('--policy <name>', 'keep-alive policy: none | fixed | greedy-dual | hybrid-histogram')
    .option('--memory-mib <n>', 'node memory budget (default unlimited)')
    .option('--profile <file>', 'measured start costs (written by `faascell bench snapshots`)')
    .option('--config <file>', "take the policies from a daemon config file")
    .option('--day <dNN>', 'Azure day')
    .option('--duration-s <s>', 'simulate only the first S seconds')
    .option('--top-functions <n>', 'keep only the N most invoked functions')
    .option('--time-scale <x>', 'multiply trace time (0.5 = twice as dense)')
    .option('--max-instances <n>', 'per-function instance limit')
    .option('--max-queue-delay-ms <n>', 'a request waiting longer for memory is dropped (counted)')
    .option('--spread <how>', 'arrivals within a minute: even | random (seeded)')
    .option('--slot-seconds <s>', 'FaaSRail slot length (default 60)')
    .option('--seed <n>')
    .option('--json', 'one JSON object on stdout')
    .action(async (o: Record<string, string | boolean | undefined>) => {
      const { runSimulateCommand } = await import('../sim/cli.js');
      await runSimulateCommand(o as unknown as Parameters<typeof runSimulateCommand>[0]);
    });

  p.command('replay')
    .description('open-loop load generator: replays a trace against a running daemon')
    .requiredOption('--trace <dirOrFile>', 'Azure Functions 2019 day directory/file, or a FaaSRail spec')
    .option('--format <format>', 'azure | faasrail', 'azure')
    .option('--map <pairs>', 'traceFn=deployedFn,…')
    .option('--map-file <file>', 'JSON {traceFn: deployedFn} or lines traceFn=deployedFn')
    .option('--functions <list>', 'deployed functions; trace functions (most invoked first) map onto them round-robin')
    .option('--compress <factor>', 'trace seconds per replay second', '1')
    .option('--duration <s>', 'stop scheduling after S seconds of replay time')
    .option('--from <s>', 'skip the first S seconds of the trace')
    .option('--max-inflight <n>', 'safety valve on outstanding requests (counted when hit)')
    .option('--timeout-ms <n>', 'per-request client timeout')
    .option('--out <file>', 'one JSON record per request (JSONL)')
    .option('--day <dNN>')
    .option('--spread <how>', 'arrivals within a slot: even | random (seeded)')
    .option('--slot-seconds <s>', 'FaaSRail slot length (default 60)')
    .option('--seed <n>')
    .option('--json', 'print the summary as JSON')
    .action(async (o: Record<string, string | boolean | undefined>, cmd: Command) => {
      const { runReplayCommand } = await import('../replay/replay.js');
      const g = cmd.optsWithGlobals<{ url?: string; token?: string }>();
      await runReplayCommand({ ...(o as unknown as Parameters<typeof runReplayCommand>[0]), url: g.url ?? process.env.FAASCELL_URL ?? 'http://127.0.0.1:8080', token: g.token ?? process.env.FAASCELL_TOKEN });
    });

  p.command('bench')
    .description('benchmarks with real VMs: startup (cold/warm/overhead/RSS), snapshots (cold/restore/warm per tier, prefetch, density), restore-steps (a restored clone step by step, with TCG translation counts), or all')
    .argument('[which]', 'startup | snapshots | restore-steps | all | idle-cpu | memory | guest-start (the last three are not part of all)', 'all')
    .option('--cold-runs <n>', 'cold boots per function', (v) => parseInt(v, 10), 5)
    .option('--warm-runs <n>', 'warm invocations', (v) => parseInt(v, 10), 50)
    .option('--restore-runs <n>', 'restores per function and tier', (v) => parseInt(v, 10), 10)
    .option('--density <list>', 'clones restored at once', list, [10, 40, 80])
    .option('--out <dir>', 'where results (JSON, Markdown, simulator profile) go', 'bench/results')
    // --- guest-side benchmarks (issue 9): variants side by side ---
    .option('--variants <list>', 'idle-cpu/memory/guest-start: image variants to compare (baseline, tuned, …)', (v: string) => v.split(',').filter(Boolean))
    .option('--vms <list>', 'idle-cpu: idle VM counts', list, [1, 10, 50])
    .option('--seconds <n>', 'idle-cpu: measuring window', (v) => parseInt(v, 10), 20)
    .option('--settle <n>', 'idle-cpu: seconds between the last call and the window', (v) => parseInt(v, 10), 10)
    .option('--memory-vms <n>', 'memory: idle VMs at once', (v) => parseInt(v, 10), 10)
    .option('--clones <n>', 'memory: restored clones', (v) => parseInt(v, 10), 5)
    .option('--boots <n>', 'guest-start: cold boots per variant', (v) => parseInt(v, 10), 8)
    .action(async (which: string, o: { coldRuns: number; warmRuns: number; restoreRuns: number; density: number[]; out: string; variants?: string[]; vms: number[]; seconds: number; settle: number; memoryVms: number; clones: number; boots: number }) => {
      mkdirSync(o.out, { recursive: true });
      const stamp = new Date().toISOString().replace(/[:.]/g, '-');
      const md: string[] = [];
      const json: Record<string, unknown> = {};
      if (which === 'startup' || which === 'all') {
        const { benchStartup, formatStartup } = await import('../../bench/startup.js');
        console.error('bench startup: cold boots, warm calls, direct channel, RSS…');
        const r = await benchStartup({ coldRuns: o.coldRuns, warmRuns: o.warmRuns });
        const text = formatStartup(r);
        console.log(text + '\n');
        md.push('## startup\n\n' + text);
        json.startup = r;
      }
      if (which === 'snapshots' || which === 'all') {
        const { benchSnapshots, formatSnapshots } = await import('../../bench/snapshots.js');
        console.error('bench snapshots: cold vs restore vs warm, tiers, prefetch, density…');
        const r = await benchSnapshots({ coldRuns: Math.max(2, Math.min(o.coldRuns, 3)), restoreRuns: o.restoreRuns, warmRuns: o.warmRuns, density: o.density });
        const text = formatSnapshots(r);
        console.log(text + '\n');
        md.push('## snapshots\n\n' + text);
        json.snapshots = r;
        const { profileFromBench } = await import('../../bench/profile.js');
        writeFileSync(path.join(o.out, 'profile.json'), JSON.stringify(profileFromBench(r), null, 2));
      }
      if (which === 'restore-steps' || which === 'all') {
        const { benchRestoreSteps, formatRestoreSteps } = await import('../../bench/restore-steps.js');
        console.error('bench restore-steps: a restored clone step by step…');
        const r = await benchRestoreSteps({ runs: o.restoreRuns, variants: o.variants });
        const text = formatRestoreSteps(r);
        console.log(text + '\n');
        md.push('## restore steps\n\n' + text);
        json.restoreSteps = r;
      }
      if (which === 'idle-cpu') {
        const { benchIdleCpu, formatIdleCpu } = await import('../../bench/idle-cpu.js');
        console.error('bench idle-cpu: host CPU of idle VMs, variants side by side…');
        const r = await benchIdleCpu({ counts: o.vms, seconds: o.seconds, settleSeconds: o.settle, variants: o.variants });
        const text = formatIdleCpu(r);
        console.log(text + '\n');
        md.push('## idle cpu\n\n' + text);
        json.idleCpu = r;
      }
      if (which === 'memory') {
        const { benchMemory, formatMemory } = await import('../../bench/memory.js');
        console.error('bench memory: host memory per VM by mapping, variants side by side…');
        const r = await benchMemory({ vms: o.memoryVms, clones: o.clones, variants: o.variants });
        const text = formatMemory(r);
        console.log(text + '\n');
        md.push('## memory\n\n' + text);
        json.memory = r;
      }
      if (which === 'guest-start') {
        const { benchGuestStart, formatGuestStart } = await import('../../bench/guest-start.js');
        console.error('bench guest-start: /init -> agent ready by stage, variants interleaved…');
        const r = await benchGuestStart({ boots: o.boots, variants: o.variants });
        const text = formatGuestStart(r);
        console.log(text + '\n');
        md.push('## guest start\n\n' + text);
        json.guestStart = r;
      }
      if (md.length === 0) throw new Error(`unknown benchmark ${which}: startup | snapshots | restore-steps | all | idle-cpu | memory | guest-start`);
      writeFileSync(path.join(o.out, `bench-${stamp}.json`), JSON.stringify(json, null, 2));
      writeFileSync(path.join(o.out, `bench-${stamp}.md`), md.join('\n\n') + '\n');
      console.error(`results in ${o.out}/bench-${stamp}.{json,md}`);
    });
}
