// Commands whose implementation lives outside the CLI: benchmarks, simulator, replay.
import type { Command } from 'commander';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const list = (v: string): number[] => v.split(',').map((x) => parseInt(x, 10)).filter((x) => x > 0);

/** The flags naming the trace a command reads (simulate, replay): the same words in both. */
function traceInput(c: Command): Command {
  return c
    .requiredOption('--trace <dirOrFile>', 'Azure Functions 2019 day directory/file, a FaaSRail spec, or a slots spec')
    .option('--format <format>', 'azure | faasrail (specs as FaaSRail writes them; older slots files too) | slots | invocations (faascell trace export)', 'azure');
}

const SLOT_SECONDS = 'replay length of one slot / FaaSRail minute column (default 60)';

export function registerExtraCommands(p: Command): void {
  traceInput(p.command('simulate').description('discrete-event simulation of one node running the real policy objects over a trace'))
    .option('--policy <name>', 'keep-alive policy: none | fixed | greedy-dual | hybrid-histogram')
    .option('--memory-mib <n>', 'node memory budget (default: --config\'s, else unlimited)')
    .option('--profile <file>', 'measured start costs (written by `faascell bench snapshots`)')
    .option('--config <file>', 'model the node a daemon config file describes: its policies, memory budget, watermarks, admission and start limits, snapshots')
    .option('--cores <n>', 'host cores of the simulated node (default: the profile\'s node)')
    .option('--max-concurrent-starts <n|auto>', 'boots and restores at once (default auto: cores minus VM CPU)')
    .option('--max-concurrency <n>', 'invocations running at once (default 64, as the daemon)')
    .option('--watermarks <low,high>', 'memory watermarks (default 0.8,0.95 as the daemon; 1,1 = a plain budget)')
    .option('--no-cpu-model', 'every start takes its profiled time, whatever runs beside it')
    .option('--no-snapshots', 'no snapshots: every non-warm start is a cold boot')
    .option('--day <dNN>', 'Azure day')
    .option('--duration-s <s>', 'simulate only the first S seconds')
    .option('--top-functions <n>', 'keep only the N most invoked functions')
    .option('--time-scale <x>', 'multiply trace time (0.5 = twice as dense)')
    .option('--max-instances <n>', 'per-function instance limit')
    .option('--max-queue-delay-ms <n>', 'a request waiting longer is refused (default 60000, as the daemon)')
    .option('--spread <how>', 'arrivals within a minute: even | random (seeded)')
    .option('--slot-seconds <s>', SLOT_SECONDS)
    .option('--seed <n>')
    .option('--json', 'one JSON object on stdout')
    // issue 23: a cluster of N such nodes behind the broker (docs/cluster-simulation.md)
    .option('--nodes <n>', 'simulate a cluster of N nodes (each with the node options above) behind the cluster\'s broker and routing')
    .option('--routing <policy>', 'cluster: locality (the daemon\'s) | shared (locality off) | least-loaded | random | hash (OpenWhisk\'s home node)')
    .option('--round-ms <ms>', 'cluster: broker round, work published in a round is delivered at its end (default 2)')
    .option('--heartbeat-ms <ms>', 'cluster: cluster.heartbeatMs (default 1000)')
    .option('--node-timeout-ms <ms>', 'cluster: cluster.nodeTimeoutMs (default 5000)')
    .option('--locality-wait-ms <ms>', 'cluster: cluster.localityWaitMs (default 500)')
    .option('--ack-wait-ms <ms>', 'cluster: cluster.ackWaitMs (default 10000)')
    .option('--max-deliveries <n>', 'cluster: cluster.maxDeliveries, a message delivered more often is answered daemon_restarted (default 5)')
    .option('--max-in-flight <n|auto>', 'cluster: cluster.maxInFlight (default auto)')
    .option('--pull-rule <rule>', 'cluster: cluster.pullRule, starts (default) | instances')
    .option('--hop-ms <ms>', 'cluster: added to each answer\'s latency for the broker hop (default 2)')
    .option('--fail <list>', 'cluster: NODE@SECONDS[+RESTART_SECONDS],… nodes that die (and start again)')
    .option('--shared-snapshot-tier <name>', 'cluster: a tier of the profile every node reads: a snapshot made on one node restores on any')
    .option('--warmup-s <s>', 'cluster: invocations of the first S seconds are simulated but not counted (the cluster starts empty)')
    .option('--threads <n>', 'cluster: split the cluster into N cells of nodes and functions, one worker thread each (default 1)')
    .option('--progress-s <s>', 'cluster: note the speed every S simulated seconds (a line on stderr; `progress` in --json)')
    .action(async (o: Record<string, string | boolean | undefined>) => {
      if (o.nodes !== undefined) {
        const { runClusterSimulateCommand } = await import('../sim/cluster/cli.js');
        await runClusterSimulateCommand(o as unknown as Parameters<typeof runClusterSimulateCommand>[0]);
        return;
      }
      const { runSimulateCommand } = await import('../sim/cli.js');
      await runSimulateCommand(o as unknown as Parameters<typeof runSimulateCommand>[0]);
    });

  traceInput(p.command('replay').description('open-loop load generator: replays a trace against a running daemon'))
    .option('--map <pairs>', 'traceFn=deployedFn,…')
    .option('--map-file <file>', 'JSON {traceFn: deployedFn} or lines traceFn=deployedFn')
    .option('--functions <list>', 'deployed functions; trace functions (most invoked first) map onto them round-robin')
    .option('--workload-names', 'FaaSRail specs: call each row\'s workload (mapped_wreq.bench) by its name (specs `faascell trace export` wrote)')
    .option('--compress <factor>', 'trace seconds per replay second', '1')
    .option('--duration <s>', 'stop scheduling after S seconds of replay time')
    .option('--from <s>', 'skip the first S seconds of the trace')
    .option('--max-inflight <n>', 'safety valve on outstanding requests (counted when hit)')
    .option('--timeout-ms <n>', 'per-request client timeout')
    .option('--out <file>', 'one JSON record per request (JSONL)')
    .option('--day <dNN>')
    .option('--spread <how>', 'arrivals within a slot: even | random (seeded)')
    .option('--slot-seconds <s>', SLOT_SECONDS)
    .option('--seed <n>')
    .option('--json', 'print the summary as JSON')
    .action(async (o: Record<string, string | boolean | undefined>, cmd: Command) => {
      const { runReplayCommand } = await import('../replay/replay.js');
      const g = cmd.optsWithGlobals<{ url?: string; token?: string }>();
      await runReplayCommand({ ...(o as unknown as Parameters<typeof runReplayCommand>[0]), url: g.url ?? process.env.FAASCELL_URL ?? 'http://127.0.0.1:8080', token: g.token ?? process.env.FAASCELL_TOKEN });
    });

  // plots from result files (Vega-Lite → SVG/PNG), docs/observability.md
  p.command('plot')
    .description('plot replay records (.jsonl: latency CDF per start path, start-path mix over time) or experiment results (.csv: cold starts per policy and memory)')
    .argument('<files...>', 'replay records (faascell replay --out) and/or an experiment results.csv')
    .option('--out <dir>', 'where the plots go', 'bench/results/plots')
    .option('--format <list>', 'svg,png,json (json: the Vega-Lite specification)', 'svg,png')
    .option('--bin-seconds <s>', 'time bin of the start-path mix', '10')
    .action(async (files: string[], o: { out: string; format: string; binSeconds: string }) => {
      const { runPlotCommand } = await import('../plots/cli.js');
      await runPlotCommand({ files, ...o });
    });

  // deploy-spec: the functions a FaaSRail spec replays (issue 8)
  p.command('deploy-spec')
    .description('deploy one function per row of a FaaSRail spec, running the FunctionBench-style function of its benchmark')
    .argument('<spec>', 'a spec as faasrail-shrinkray writes it (avg,mapped_wreq,minute columns)')
    .option('--memory <MiB>', 'memory of every function (default: per benchmark, see docs/replay.md)')
    .option('--memory-for <list>', 'per benchmark: bench=MiB,… (over --memory)')
    .option('--timeout <seconds>', 'run timeout of every function (default: per benchmark)')
    .option('--vcpus <n>', 'vCPUs of every function (default: the daemon\'s functionDefaults)')
    .option('--max-instances <n>', 'instance limit of every function (default: the daemon\'s functionDefaults)')
    .option('--runtime <language>', 'javascript (nodejs20, the default) or python (python3): which FunctionBench-style functions (docs/python.md)')
    .option('--dry-run', 'print what would be deployed; no daemon needed')
    .option('--json', 'print the plan as JSON')
    .action(async (spec: string, o: Record<string, string | boolean | undefined>, cmd: Command) => {
      const { runDeploySpec } = await import('./deploy-spec.js');
      const g = cmd.optsWithGlobals<{ url?: string; token?: string }>();
      await runDeploySpec({ ...(o as Omit<Parameters<typeof runDeploySpec>[0], 'spec'>), spec, url: g.url ?? process.env.FAASCELL_URL, token: g.token ?? process.env.FAASCELL_TOKEN });
    });

  p.command('bench')
    .description('benchmarks with real VMs (or the simulator), printing medians, p99 and side-by-side ratios; results go to --out')
    .argument('[which]', 'startup | snapshots | restore-steps | cold-snapshot | warm-vm | density | profile | python | sim | cluster | network | idle-cpu | memory | guest-start | restored-memory | restore-daemon | cli | idle-cap | idle-density | density-load | clone-memory | all', 'all')
    .addHelpText(
      'after',
      `
What each one measures (all but sim and cli start real VMs; run them alone on the machine, or under
flock /tmp/faascell-vm.lock on a shared one):
  startup         cold boot, warm call, the same call straight to the VM's channel, memory of an idle VM
  snapshots       cold vs restore vs warm per storage tier, working-set prefetch, clones restored at once
  restore-steps   a restored clone step by step (QEMU restore, first ping, resync, first runs; TCG translations)
  cold-snapshot   a cold start that leaves a snapshot: without one, with the former self-restore, with the RAM copy
  warm-vm         a warm call through the daemon vs straight to the agent channel, interleaved
  density         N clones of one snapshot at once (--density), through the daemon and the raw driver
  profile         the node profile the simulator uses (start costs per runtime and memory size, VMM CPU, idle VM CPU)
  python          (issue 21) cold/restore/warm of Python heavy imports (numpy, scikit-learn, PyTorch) next to
                  hello in Node.js and Python, through the daemon
  sim             simulator speed on a 600-function day (no VM)
  cluster         nats-server + three daemons: broker vs straight HTTP, three nodes vs one, locality
  network         (root) network slots, restores with/without the slot pool, NAT vs serial channel
  idle-cpu, memory, guest-start   guest image variants side by side (--variants): host CPU of idle VMs,
                  memory per VM, /init to agent ready by stage
  restored-memory restored clones allocating most of their memory, RAM backings side by side
  ksm             (root) same-page merging of idle VMs' memory, ksmd off vs on on the same VMs (host-wide: restored after)
  restore-daemon  restores through the daemon: resync carried by the first run vs a separate request
  cli             the faascell command itself: --version, --help, a warm invoke (compiled vs through tsx)
  idle-cap        a function that spins after its result: host CPU of its idle VM with limits.idleCpuQuota
                  on and off (two daemons side by side), and the warm call with and without the cap
  idle-density    (issue 24) VMs kept under one memory budget until the first refusal, nominal vs measured
                  accounting side by side: cold-booted and clones of one snapshot (--paths, --budget-mib,
                  --phase-seconds, --floor-mib, --max-vms, --accountings, --psi-some-evict), with the simulator's prediction
  density-load    (issue 24) a load of many small functions beyond the nominal budget, nominal vs measured
                  accounting one after the other, and simulated; in steps (--step prep|nominal|measured|report,
                  --work DIR: one VM-lock hold each) or all at once (--step all); docs/density.md
  clone-memory    (issue 24) clones of one snapshot by mapping kind (smaps) and guest pages copied (pagemap),
                  read at --settle and --seconds s; variants interleaved over --rounds (--variants default,tb16,
                  arena2,tb16+arena2,tb14+thpoff: restored clones' code cache, MALLOC_ARENA_MAX, limits.vmmThp), --clones, --warm-runs
  all             startup, snapshots and restore-steps`
    )
    .option('--cold-runs <n>', 'cold boots per function', (v) => parseInt(v, 10), 5)
    .option('--warm-runs <n>', 'warm invocations', (v) => parseInt(v, 10), 50)
    .option('--restore-runs <n>', 'restores per function and tier', (v) => parseInt(v, 10), 10)
    .option('--density <list>', 'clones restored at once', list, [10, 40, 80])
    .option('--no-density-raw', 'bench density: only the daemon path, not the raw driver paths')
    .option('--sim-runs <n>', 'simulator runs per configuration (bench sim)', (v) => parseInt(v, 10), 5)
    .option('--nodes <n>', 'bench sim: a simulated cluster of N nodes (issue 23) instead of one node', (v) => parseInt(v, 10))
    .option('--functions <n>', 'bench sim --nodes: functions of the synthetic day (default 50000)', (v) => parseInt(v, 10))
    .option('--threads <n>', 'bench sim --nodes: worker threads (default 2)', (v) => parseInt(v, 10))
    .option('--minutes <n>', 'bench sim --nodes: simulate the first N minutes of the day (default all)', (v) => parseInt(v, 10))
    .option('--progress-s <s>', 'bench sim --nodes: note the speed every S simulated seconds (default 60)', (v) => parseInt(v, 10))
    .option('--cpu-runs <n>', 'CPU-bound invocations per configuration (bench cluster)', (v) => parseInt(v, 10), 24)
    .option('--locality-runs <n>', 'invocations per locality run (bench cluster)', (v) => parseInt(v, 10), 60)
    .option('--sections <list>', 'bench cluster: which parts (warm,cpu,locality; default those three; heartbeat: the lag of a node\'s post-answer heartbeat, only when named)', (v: string) => v.split(',').filter(Boolean))
    .option('--paths <list>', 'idle-density: clones,cold', (v: string) => v.split(',').filter(Boolean))
    .option('--accountings <list>', 'idle-density: nominal,measured (default both, one after the other)', (v: string) => v.split(',').filter(Boolean))
    .option('--budget-mib <n>', 'idle-density: node.memoryBudgetMiB of both daemons (default: the host\'s RAM)', (v) => parseInt(v, 10))
    .option('--phase-seconds <n>', 'idle-density: longest phase', (v) => parseInt(v, 10), 150)
    .option('--floor-mib <n>', 'idle-density: stop a phase when MemAvailable falls below this', (v) => parseInt(v, 10), 3072)
    .option('--max-vms <n>', 'idle-density: most VMs per phase', (v) => parseInt(v, 10), 500)
    .option('--psi-some-evict <pct>', 'idle-density: node.memory.guard.psiSomeEvict of both daemons (0: the guard ignores PSI some; default the daemon\'s)', (v) => parseInt(v, 10))
    .option('--step <step>', 'density-load: prep | nominal | measured | report | all', 'all')
    .option('--work <dir>', 'density-load: the work directory kept between steps', path.join(os.tmpdir(), 'fc-density-load'))
    .option('--load-functions <n>', 'density-load: functions', (v) => parseInt(v, 10), 200)
    .option('--load-requests <n>', 'density-load: requests over the load', (v) => parseInt(v, 10), 600)
    .option('--load-seconds <n>', 'density-load: length of the load', (v) => parseInt(v, 10), 240)
    .option('--load-skew <x>', 'density-load: popularity of the r-th function r^-x', Number, 0.8)
    .option('--load-seed <n>', 'density-load: seed of the arrivals', (v) => parseInt(v, 10), 1)
    .option('--prep-seconds <n>', 'density-load: longest preparation run (run --step prep again to go on)', (v) => parseInt(v, 10), 600)
    .option('--rep <n>', 'density-load: --step nominal|measured: which repetition the phase records', (v) => parseInt(v, 10), 1)
    .option('--repetitions <n>', 'density-load: --step all: repetitions of the two phases', (v) => parseInt(v, 10), 1)
    .option('--out <dir>', 'where results (JSON, Markdown, simulator profile) go', 'bench/results')
    // --- guest-side benchmarks (issue 9): variants side by side ---
    .option('--variants <list>', 'idle-cpu/memory/guest-start: image variants to compare (baseline, tuned, …)', (v: string) => v.split(',').filter(Boolean))
    .option('--vms <list>', 'idle-cpu: idle VM counts', list, [1, 10, 50])
    .option('--seconds <n>', 'idle-cpu: measuring window', (v) => parseInt(v, 10), 20)
    .option('--settle <n>', 'idle-cpu: seconds between the last call and the window', (v) => parseInt(v, 10), 10)
    .option('--memory-vms <n>', 'memory, ksm: idle VMs at once', (v) => parseInt(v, 10), 10)
    .option('--clones <n>', 'memory: restored clones', (v) => parseInt(v, 10), 5)
    .option('--boots <n>', 'guest-start: cold boots per variant', (v) => parseInt(v, 10), 8)
    .option('--rounds <n>', 'restored-memory: rounds of two clones per backing', (v) => parseInt(v, 10), 5)
    .option('--backings <list>', 'restored-memory: RAM backings to compare (tmpfs-sparse, tmpfs-sparse+limit, tmpfs-dense, disk, disk-cold, full-stream)', (v: string) => v.split(',').filter(Boolean))
    .action(async (which: string, o: { coldRuns: number; warmRuns: number; restoreRuns: number; density: number[]; densityRaw: boolean; simRuns: number; nodes?: number; functions?: number; threads?: number; minutes?: number; progressS?: number; cpuRuns: number; localityRuns: number; sections?: string[]; out: string; variants?: string[]; vms: number[]; seconds: number; settle: number; memoryVms: number; clones: number; boots: number; rounds: number; backings?: string[]; paths?: string[]; budgetMib?: number; phaseSeconds: number; floorMib: number; maxVms: number; psiSomeEvict?: number; accountings?: string[]; step: string; work: string; loadFunctions: number; loadRequests: number; loadSeconds: number; loadSkew: number; loadSeed: number; prepSeconds: number; rep: number; repetitions: number }) => {
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
      if (which === 'cli') {
        const { benchCli, formatCli } = await import('../../bench/cli.js');
        console.error('bench cli: the faascell command, compiled vs through tsx, interleaved…');
        const r = await benchCli({ runs: o.warmRuns });
        const text = formatCli(r);
        console.log(text + '\n');
        md.push('## cli\n\n' + text);
        json.cli = r;
      }
      if (which === 'cold-snapshot') {
        // issue 9 item 1: the cold path of a start that leaves a snapshot, former vs copy, side by side
        const { benchColdSnapshot, formatColdSnapshot } = await import('../../bench/cold-snapshot.js');
        console.error('bench cold-snapshot: cold starts without snapshot, with the former self-restore, with the RAM copy…');
        const r = await benchColdSnapshot({ runs: o.coldRuns });
        const text = formatColdSnapshot(r);
        console.log(text + '\n');
        md.push('## cold start with a snapshot\n\n' + text);
        json.coldSnapshot = r;
      }
      if (which === 'warm-vm') {
        // issue 9 item 3: warm call through the daemon vs straight to the agent channel, interleaved
        const { benchWarmVm, formatWarmVm } = await import('../../bench/warm-vm.js');
        console.error('bench warm-vm: warm calls through the daemon and straight to a VM, interleaved…');
        const r = await benchWarmVm({ calls: o.warmRuns });
        const text = formatWarmVm(r);
        console.log(text + '\n');
        md.push('## warm call with a real VM\n\n' + text);
        json.warmVm = r;
      }
      if (which === 'density') {
        // issue 9 item 6: N clones restored at once, raw driver (clones stay / stop) and through the daemon
        const { benchDensity, formatDensity } = await import('../../bench/density.js');
        console.error('bench density: N clones of one snapshot at once…');
        const r = await benchDensity({ ns: o.density, daemon: true, raw: o.densityRaw });
        const text = formatDensity(r);
        console.log(text + '\n');
        md.push('## density\n\n' + text);
        json.density = r;
      }
      if (which === 'profile') {
        const { benchProfile, formatProfile } = await import('../../bench/profile-node.js');
        console.error('bench profile: cold/restore/warm per memory size, VMM CPU, idle VM CPU, concurrent boots…');
        const r = await benchProfile({ coldRuns: Math.min(o.coldRuns, 5), restoreRuns: Math.min(o.restoreRuns, 10) });
        const text = formatProfile(r);
        console.log(text + '\n');
        md.push(text);
        json.profile = r;
        writeFileSync(path.join(o.out, 'node-profile.json'), JSON.stringify(r.profile, null, 2) + '\n');
        console.error(`simulator profile: ${path.join(o.out, 'node-profile.json')}`);
      }
      if (which === 'python') {
        // issue 21: cold / restore / warm of Python functions with heavy imports next to hello in Node.js and Python
        const { benchPython, formatPython } = await import('../../bench/python.js');
        console.error('bench python: cold, restore and warm of hello (Node.js, Python) and Python heavy imports, interleaved…');
        const r = await benchPython({ coldRuns: o.coldRuns, restoreRuns: o.restoreRuns, warmRuns: o.warmRuns });
        const text = formatPython(r);
        console.log(text + '\n');
        md.push('## python\n\n' + text);
        json.python = r;
      }
      if (which === 'sim' && o.nodes !== undefined) {
        // issue 23: a simulated cluster at data-centre scale
        const { benchClusterSpeed, formatClusterSpeed } = await import('../../bench/sim-cluster-speed.js');
        console.error(`bench sim --nodes ${o.nodes}: a ${o.functions ?? 50000}-function day through the cluster simulator…`);
        const r = await benchClusterSpeed({ nodes: o.nodes, functions: o.functions, threads: o.threads, minutes: o.minutes, progressS: o.progressS });
        const text = formatClusterSpeed(r);
        console.log(text + '\n');
        md.push(text);
        json.simClusterSpeed = r;
      } else if (which === 'sim') {
        const { benchSimSpeed, formatSimSpeed } = await import('../../bench/sim-speed.js');
        console.error('bench sim: simulated invocations per second on a 600-function day…');
        const r = await benchSimSpeed({ runs: o.simRuns });
        const text = formatSimSpeed(r);
        console.log(text + '\n');
        md.push(text);
        json.simSpeed = r;
      }
      if (which === 'cluster') {
        // issue 13: nats-server + daemons as separate processes (not part of `all`: minutes of VMs)
        const { benchCluster, formatCluster } = await import('../../bench/cluster.js');
        console.error('bench cluster: broker vs straight HTTP, three nodes vs one, locality on/off…');
        const r = await benchCluster({ warmRuns: o.warmRuns, cpuRuns: o.cpuRuns, localityRuns: o.localityRuns, sections: o.sections as Array<'warm' | 'cpu' | 'locality' | 'heartbeat'> | undefined });
        const text = formatCluster(r);
        console.log(text + '\n');
        md.push('## cluster\n\n' + text);
        json.cluster = r;
      }
      // networking (issue 10): not part of `all` (it needs root, namespaces and nftables)
      if (which === 'network') {
        const { benchNetwork, formatNetwork } = await import('../../bench/network.js');
        console.error('bench network: slot operations, restores with/without the pool, NAT vs serial channel, /init cost…');
        const r = await benchNetwork({ runs: o.restoreRuns, boots: Math.max(3, Math.min(o.coldRuns, 8)) });
        const text = formatNetwork(r);
        console.log(text + '\n');
        md.push('## network\n\n' + text);
        json.network = r;
      }
      if (which === 'restore-daemon') {
        // issue 9 item 4 end to end: restore -> response through the daemon, resync with-run vs message
        const { benchRestoreDaemon, formatRestoreDaemon } = await import('../../bench/restore-daemon.js');
        console.error('bench restore-daemon: restores through the daemon, resync carried by the first run vs a separate request…');
        const r = await benchRestoreDaemon({ runs: o.restoreRuns });
        const text = formatRestoreDaemon(r);
        console.log(text + '\n');
        md.push('## restore through the daemon\n\n' + text);
        json.restoreDaemon = r;
      }
      if (which === 'idle-density') {
        const { benchIdleDensity, formatIdleDensity } = await import('../../bench/idle-density.js');
        console.error('bench idle-density: VMs until the first refusal, nominal vs measured accounting…');
        const paths = (o.paths ?? ['clones', 'cold']).map((x) => {
          if (x !== 'clones' && x !== 'cold') throw new Error(`--paths: ${x} is not clones or cold`);
          return x;
        });
        const accountings = (o.accountings ?? ['nominal', 'measured']).map((x) => {
          if (x !== 'nominal' && x !== 'measured') throw new Error(`--accountings: ${x} is not nominal or measured`);
          return x;
        });
        const r = await benchIdleDensity({ paths, accountings, budgetMiB: o.budgetMib ?? Math.floor(os.totalmem() / 1048576), phaseSeconds: o.phaseSeconds, floorMiB: o.floorMib, maxVms: o.maxVms, ...(o.psiSomeEvict !== undefined ? { psiSomeEvict: o.psiSomeEvict } : {}) });
        const text = formatIdleDensity(r);
        console.log(text + '\n');
        md.push('## idle density\n\n' + text);
        json.idleDensity = r;
      }
      if (which === 'density-load') {
        const { benchDensityLoad } = await import('../../bench/density-load.js');
        const step = o.step;
        if (!['prep', 'nominal', 'measured', 'report', 'all'].includes(step)) throw new Error(`--step: ${step} is not prep, nominal, measured, report or all`);
        const text = await benchDensityLoad({ step: step as 'all', work: o.work, functions: o.loadFunctions, requests: o.loadRequests, seconds: o.loadSeconds, skew: o.loadSkew, seed: o.loadSeed, budgetMiB: o.budgetMib, prepSeconds: o.prepSeconds, rep: o.rep, repetitions: o.repetitions, out: o.out });
        if (text) {
          console.log(text + '\n');
          md.push('## density load\n\n' + text);
        } else md.push(`## density load\n\nstep ${step} done (work directory ${o.work})`);
      }
      if (which === 'clone-memory') {
        // issue 24: where a clone's host memory goes, and the knobs that cut it, side by side
        const { benchCloneMemory, cloneMemoryVariant, formatCloneMemory } = await import('../../bench/clone-memory.js');
        console.error('bench clone-memory: clones of one snapshot by mapping kind, variants interleaved…');
        const r = await benchCloneMemory({ clones: o.clones, readsAt: [o.settle, o.seconds], warmRuns: o.warmRuns, rounds: o.rounds, variants: (o.variants ?? ['default']).map(cloneMemoryVariant) });
        const text = formatCloneMemory(r);
        console.log(text + '\n');
        md.push('## clone memory\n\n' + text);
        json.cloneMemory = r;
      }
      if (which === 'idle-cap') {
        // issue 19: the idle CPU cap on and off side by side (warm path cost, a spinning idle VM's CPU)
        const { benchIdleCap, formatIdleCap } = await import('../../bench/idle-cap.js');
        console.error('bench idle-cap: two daemons, with and without limits.idleCpuQuota, interleaved…');
        const r = await benchIdleCap({ calls: o.warmRuns, seconds: o.seconds, windows: 5 });
        const text = formatIdleCap(r);
        console.log(text + '\n');
        md.push('## idle CPU cap\n\n' + text);
        json.idleCap = r;
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
      if (which === 'restored-memory') {
        const { benchRestoredMemory, formatRestoredMemory } = await import('../../bench/restored-memory.js');
        console.error('bench restored-memory: restored clones allocating most of their memory, RAM backings side by side…');
        const r = await benchRestoredMemory({ rounds: o.rounds, backings: o.backings });
        const text = formatRestoredMemory(r);
        console.log(text + '\n');
        md.push('## restored memory\n\n' + text);
        json.restoredMemory = r;
      }
      if (which === 'ksm') {
        // issue 24 (docs/density.md)
        const { benchKsm, formatKsm } = await import('../../bench/ksm.js');
        console.error('bench ksm: idle VMs with ksmd off, then on (host-wide, put back after)…');
        const r = await benchKsm({ vms: o.memoryVms });
        const text = formatKsm(r);
        console.log(text + '\n');
        md.push('## ksm\n\n' + text);
        json.ksm = r;
      }
      if (md.length === 0) throw new Error(`unknown benchmark ${which}: startup | snapshots | restore-steps | cold-snapshot | warm-vm | density | profile | python | sim | cluster | network | idle-cpu | memory | guest-start | restored-memory | restore-daemon | ksm | cli | idle-cap | idle-density | density-load | clone-memory | all`);
      writeFileSync(path.join(o.out, `bench-${stamp}.json`), JSON.stringify(json, null, 2));
      writeFileSync(path.join(o.out, `bench-${stamp}.md`), md.join('\n\n') + '\n');
      console.error(`results in ${o.out}/bench-${stamp}.{json,md}`);
    });
}
