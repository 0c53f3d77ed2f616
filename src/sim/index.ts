export * from './simulator.js';
export * from './profile.js';
export { runSimulateCommand, formatResult, type SimulateCommandOptions } from './cli.js';
export { EventHeap } from './heap.js';
export { LatencyHistogram } from './histogram.js';
