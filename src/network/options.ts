// The daemon's `network` configuration turned into NetworkManager options.

import type { Config } from '../config/schema.js';
import { parseCidr } from './ipv4.js';
import type { NetworkOptions } from './network-manager.js';

export function networkOptions(cfg: Config['network'], egressFunctionsExist: boolean): NetworkOptions {
  const hostCidr = parseCidr(cfg.hostCidr);
  if (!hostCidr) throw new Error(`network.hostCidr: not an IPv4 CIDR: ${cfg.hostCidr}`);
  return {
    hostCidr: { addr: hostCidr.addr, prefix: hostCidr.prefix },
    dns: cfg.dns,
    poolSize: cfg.poolSize,
    prewarm: cfg.prewarm || egressFunctionsExist,
  };
}
