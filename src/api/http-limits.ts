// Bounds on HTTP clients (issue 19: 200 slowloris sockets stayed open 65 s, fastify's
// request and connection timeouts being 0). The same settings for every listener of the
// API (TCP and the unix socket): a client must send its headers within headersTimeoutMs
// and its whole request within requestTimeoutMs (Node answers 408 and closes the socket;
// the wait for an answer is not counted: an invocation may run for minutes), an idle
// kept-alive socket is closed after keepAliveTimeoutMs, and a listener holds at most
// maxConnections sockets (further ones are closed at once).

import type { ServerOptions } from 'node:http';

export interface HttpLimits {
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
  maxConnections: number;
}

/** node:http server options for these limits (fastify's `http` option; the unix socket's server). */
export function serverOptions(l: HttpLimits): ServerOptions {
  return {
    headersTimeout: l.headersTimeoutMs,
    requestTimeout: l.requestTimeoutMs,
    keepAliveTimeout: l.keepAliveTimeoutMs,
    // Node checks the two request timeouts every connectionsCheckingInterval (30 s by default):
    // often enough that a slow client is closed close to its deadline
    connectionsCheckingInterval: Math.min(1000, Math.max(100, Math.floor(l.headersTimeoutMs / 4))),
  };
}
