// The HTTP Source: the native API (and the routes registered with it) served by
// fastify; each invocation is answered through a CallbackSink. Listens on the
// configured address only while started.

import type { FastifyInstance } from 'fastify';
import type { Source } from './types.js';

export class HttpSource implements Source {
  readonly name = 'http';
  private listening = false;
  url = '';

  constructor(
    readonly app: FastifyInstance,
    private readonly host: string,
    private readonly port: number,
  ) {}

  async start(): Promise<void> {
    await this.app.listen({ host: this.host, port: this.port });
    this.listening = true;
    const addr = this.app.server.address();
    const port = typeof addr === 'object' && addr ? addr.port : this.port;
    this.url = `http://${this.host.includes(':') ? `[${this.host}]` : this.host}:${port}`;
  }

  async stop(): Promise<void> {
    if (!this.listening) return;
    this.listening = false;
    await this.app.close();
  }
}
