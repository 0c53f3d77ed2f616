// Commands whose implementation lives in other modules (simulator, replay, benchmarks).
import type { Command } from 'commander';

export function registerExtraCommands(_p: Command): void {
  // filled in as the simulator, replay and bench modules land
}
