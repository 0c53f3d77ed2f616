// The HTTP Source: the native API (and the routes registered with it) served by
// fastify; each invocation is answered through a CallbackSink. Listens only while
// started, on TCP (api.host:api.port) and on a unix socket (issue 19: api.socket,
// mode 0600 or 0660 with api.socketGroup: who may call is decided by the file's
// permissions, not by being a local process). Both listeners have the same limits
// on slow clients (src/api/http-limits.ts) and run the same fastify app.

import type { FastifyInstance } from 'fastify';
import { chownSync, chmodSync, lstatSync, unlinkSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { serverOptions, type HttpLimits } from '../api/http-limits.js';
import type { Source } from './types.js';

export interface HttpListen {
  /** listen on TCP host:port */
  tcp?: { host: string; port: number };
  /** listen on a unix socket at this path; gid: group allowed too (mode 0660) */
  socket?: { path: string; gid?: number };
  limits: HttpLimits;
  /** every connection accepted on the unix socket is added here (the API's caller check skips Host for them) */
  unixConnections?: WeakSet<net.Socket>;
}

/** sun_path holds 108 bytes with its terminating NUL */
export const MAX_SOCKET_PATH = 107;

export class HttpSource implements Source {
  readonly name = 'http';
  private listening = false;
  private unixServer: http.Server | undefined;
  /** http://host:port when listening on TCP, else unix:PATH */
  url = '';

  constructor(
    readonly app: FastifyInstance,
    private readonly listen: HttpListen,
  ) {}

  async start(): Promise<void> {
    const { tcp, socket } = this.listen;
    if (tcp) {
      await this.app.listen({ host: tcp.host, port: tcp.port });
      const addr = this.app.server.address();
      const port = typeof addr === 'object' && addr ? addr.port : tcp.port;
      this.url = `http://${tcp.host.includes(':') ? `[${tcp.host}]` : tcp.host}:${port}`;
    } else {
      await this.app.ready();
    }
    this.listening = true;
    if (socket) {
      this.unixServer = await listenUnix(this.app, socket, this.listen.limits, this.listen.unixConnections);
      if (!tcp) this.url = `unix:${socket.path}`;
    }
  }

  async stop(): Promise<void> {
    if (!this.listening) return;
    this.listening = false;
    const unix = this.unixServer;
    this.unixServer = undefined;
    // both at once: fastify's close waits for requests in flight, whichever listener they came on
    await Promise.all([
      unix ? new Promise<void>((r) => {
        unix.close(() => r()); // Node removes the socket file
        unix.closeIdleConnections();
      }) : undefined,
      this.app.close(),
    ]);
  }
}

async function listenUnix(app: FastifyInstance, s: { path: string; gid?: number }, limits: HttpLimits, marks?: WeakSet<net.Socket>): Promise<http.Server> {
  if (Buffer.byteLength(s.path) > MAX_SOCKET_PATH) throw new Error(`api.socket: ${s.path} is longer than a unix socket path may be (${MAX_SOCKET_PATH} bytes); set a shorter api.socket`);
  await removeStaleSocket(s.path);
  const server = http.createServer(serverOptions(limits), (req, res) => app.routing(req, res));
  server.maxConnections = limits.maxConnections;
  if (marks) server.on('connection', (c: net.Socket) => marks.add(c));
  // the mode is the access control: the socket must never exist with a wider one, so it is
  // created under a umask that gives it (bind happens synchronously inside listen())
  const old = process.umask(s.gid === undefined ? 0o177 : 0o117);
  let bound: Promise<void>;
  try {
    bound = new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(s.path, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } finally {
    process.umask(old);
  }
  await bound;
  if (s.gid !== undefined) {
    chownSync(s.path, process.getuid?.() ?? 0, s.gid);
    chmodSync(s.path, 0o660);
  }
  return server;
}

/** A socket file a killed daemon left is removed; one a live daemon listens on is an error. */
async function removeStaleSocket(p: string): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = lstatSync(p).isSocket();
  } catch {
    return; // nothing there
  }
  if (!isSocket) throw new Error(`api.socket: ${p} exists and is not a socket`);
  const live = await new Promise<boolean>((resolve) => {
    const c = net.connect(p);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
  if (live) throw new Error(`api.socket: another process listens on ${p} (a second daemon with the same state directory?)`);
  unlinkSync(p);
}
