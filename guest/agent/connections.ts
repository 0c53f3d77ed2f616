// Connections a restored clone inherits from its snapshot are dead: each clone's
// host side (namespace, address translation, connection tracking) is new, and the
// peer never heard of the clone. The agent tracks the outgoing TCP connections user
// code opens (net, http, https, fetch all go through net.Socket#connect) and, when a
// resync says the VM was restored, destroys the ones opened before with an error
// whose code is ERR_FAASCELL_RESTORED: connection pools drop them and reconnect
// instead of hanging on a half-open socket. `process.on('faascell:restored', info)`
// lets user code reset its own state too.

import net from 'node:net';

export const RESTORED_CODE = 'ERR_FAASCELL_RESTORED';
export const RESTORED_EVENT = 'faascell:restored';

export interface ConnectionTracker {
  /** Destroys every tracked connection still open; returns how many. */
  closeAll(): number;
  readonly size: number;
}

/** True for IPC (unix socket) connects, whatever form the arguments take. */
function isIpc(args: unknown[]): boolean {
  let first = args[0];
  // net.connect() passes its already normalised [options, cb] array
  if (Array.isArray(first)) first = first[0];
  if (typeof first === 'string') return !/^\d+$/.test(first);
  if (typeof first === 'object' && first !== null) return typeof (first as { path?: unknown }).path === 'string';
  return false;
}

export function installConnectionTracker(): ConnectionTracker {
  const live = new Set<net.Socket>();
  const proto = net.Socket.prototype as unknown as { connect: (this: net.Socket, ...a: unknown[]) => net.Socket };
  const connect = proto.connect;
  proto.connect = function (this: net.Socket, ...args: unknown[]) {
    if (!isIpc(args) && !live.has(this)) {
      live.add(this);
      this.once('close', () => live.delete(this));
    }
    return connect.apply(this, args);
  };
  return {
    closeAll() {
      let n = 0;
      for (const s of [...live]) {
        live.delete(s);
        if (s.destroyed) continue;
        const err = Object.assign(new Error('connection opened before the snapshot this VM was restored from: its network path is gone'), { code: RESTORED_CODE });
        s.destroy(err);
        n++;
      }
      return n;
    },
    get size() {
      return live.size;
    },
  };
}
