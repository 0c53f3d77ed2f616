// What a VMM process asks of the host CPU, read from /proc: the time its threads
// ran plus the time they waited on a runqueue (schedstat, ns). CPU time alone
// understates a CPU-bound VM on a busy host (it gets what it is given); with the
// runqueue wait it measures the demand: about a core for a CPU-bound vCPU thread
// however loaded the host is (issue 18: the decision core's CPU accounting).
import fs from 'node:fs';

/** Run + runqueue-wait time of every thread of process `pid` so far (ms), or undefined when unreadable. */
export function cpuDemandMs(pid: number): number | undefined {
  if (!(pid > 0)) return undefined;
  let ns = 0;
  try {
    for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
      let text: string;
      try {
        text = fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'latin1');
      } catch {
        continue; // the thread ended meanwhile
      }
      const [run, wait] = text.split(' ');
      ns += Number(run) + Number(wait);
    }
  } catch {
    return undefined;
  }
  return Number.isFinite(ns) ? ns / 1e6 : undefined;
}
