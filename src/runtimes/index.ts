// Runtime driver factory. The Firecracker driver is loaded lazily so a tree (or
// a host) without it still runs QEMU.

import { QemuDriver, type QemuDriverOptions } from './qemu/driver.js';
import type { RuntimeDriver, RuntimeName } from './types.js';

export interface CreateDriverOptions {
  log?: (msg: string) => void;
  qemu?: Omit<QemuDriverOptions, 'log'>;
  /** Passed to FirecrackerDriver's constructor (its FirecrackerDriverOptions), plus `log`. */
  firecracker?: Record<string, unknown>;
}

type DriverCtor = new (opts: Record<string, unknown>) => RuntimeDriver;

export async function createDriver(name: RuntimeName, opts: CreateDriverOptions = {}): Promise<RuntimeDriver> {
  switch (name) {
    case 'qemu':
      return new QemuDriver({ ...opts.qemu, log: opts.log });
    case 'firecracker': {
      // A non-literal specifier keeps the type checker from requiring the file.
      const spec = './firecracker/driver.js';
      let mod: { FirecrackerDriver?: DriverCtor };
      try {
        mod = (await import(spec)) as { FirecrackerDriver?: DriverCtor };
      } catch (e) {
        throw new Error(`runtime "firecracker" is not available: ${(e as Error).message}`, { cause: e });
      }
      if (typeof mod.FirecrackerDriver !== 'function') throw new Error('runtime "firecracker": src/runtimes/firecracker/driver.ts does not export FirecrackerDriver');
      return new mod.FirecrackerDriver({ ...opts.firecracker, log: opts.log });
    }
    default:
      throw new Error(`unknown runtime "${String(name)}" (expected "qemu" or "firecracker")`);
  }
}

export { QemuDriver } from './qemu/driver.js';
export type { QemuDriverOptions } from './qemu/driver.js';
export { detectAccelerator, type AccelDecision, type AccelMode } from './qemu/accel.js';
export { SocketChannel } from './channel.js';
