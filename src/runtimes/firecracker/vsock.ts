// Host side of Firecracker's hybrid vsock (docs/vsock.md upstream): Firecracker
// listens on the unix socket configured as `uds_path`; the host connects,
// writes "CONNECT <port>\n" and reads "OK <host-side port>\n", after which the
// socket is a byte pipe to the guest's AF_VSOCK listener on <port>.
//
// NOT used by the driver yet: the guest agent (Node) cannot open AF_VSOCK
// without a native addon or a bridge, so the driver talks to the agent over the
// serial port instead (see docs/firecracker.md). Kept, tested, for that switch.

import net from 'node:net';
import { connectUnixSocket } from '../channel.js';
import { monoNow } from '../../core/clock.js';

export class VsockConnectError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'VsockConnectError';
  }
}

/**
 * Opens a host-initiated vsock connection to `port` in the guest. Resolves with
 * the socket positioned after the "OK" line and explicitly paused: attach the
 * consumer (e.g. `new SocketChannel(sock)`), then call `sock.resume()`. Bytes
 * the guest sent right after the OK line are unshifted back, so none are lost.
 * Firecracker closes the connection if nobody listens on the port: that rejects.
 */
export async function connectHybridVsock(udsPath: string, port: number, timeoutMs: number): Promise<net.Socket> {
  const deadline = monoNow() + timeoutMs;
  const sock = await connectUnixSocket(udsPath, timeoutMs);
  return new Promise<net.Socket>((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const cleanup = () => {
      clearTimeout(timer);
      sock.off('data', onData);
      sock.off('close', onClose);
      sock.off('error', onError);
    };
    const fail = (msg: string) => {
      cleanup();
      sock.destroy();
      reject(new VsockConnectError(`vsock ${udsPath} port ${port}: ${msg}`));
    };
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      const nl = buf.indexOf(0x0a);
      if (nl < 0) {
        if (buf.length > 256) fail('no acknowledgement line');
        return;
      }
      const line = buf.subarray(0, nl).toString('utf8').trim();
      const rest = buf.subarray(nl + 1);
      if (!/^OK \d+$/.test(line)) {
        fail(`unexpected answer ${JSON.stringify(line)}`);
        return;
      }
      cleanup();
      sock.pause();
      if (rest.length > 0) sock.unshift(rest);
      resolve(sock);
    };
    const onClose = () => fail('closed before OK (is the guest listening on that port?)');
    const onError = (e: Error) => fail(e.message);
    const timer = setTimeout(() => fail(`no OK within ${timeoutMs} ms`), Math.max(1, deadline - monoNow()));
    sock.on('data', onData);
    sock.once('close', onClose);
    sock.once('error', onError);
    sock.write(`CONNECT ${port}\n`);
  });
}
