// One cell of a parallel cluster simulation (parallel.ts), on its worker thread.
import { parentPort, workerData } from 'node:worker_threads';
import { clusterOptions, type ClusterCommandOptions } from './cli.js';
import { simulateCluster } from './cluster.js';

const { cmd } = workerData as { cmd: ClusterCommandOptions };
const r = simulateCluster(await clusterOptions(cmd));
parentPort!.postMessage(r);
