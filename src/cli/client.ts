// HTTP client for the daemon's API, used by the CLI, the benchmark and the tests.
// It talks TCP (a URL) or the daemon's unix socket (issue 19: `unix:PATH`; without any
// URL the socket of the default state directory when it exists, as the CLI's default).

import { existsSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { ActivationRecord } from '../perf/activation.js';
import { API_SOCKET_NAME, defaultStateDir } from '../config/paths.js';

export interface ClientOptions {
  /** http://host:port, or unix:PATH for the API socket */
  url?: string;
  token?: string;
}

export const DEFAULT_URL = 'http://127.0.0.1:8080';

/** Where a client without a URL goes: the default state directory's API socket when it exists, else TCP on loopback. */
export function defaultEndpoint(): string {
  const sock = path.join(defaultStateDir(), API_SOCKET_NAME);
  return existsSync(sock) ? `unix:${sock}` : DEFAULT_URL;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: { error?: { code?: string; message?: string; field?: string }; activation?: unknown },
  ) {
    super(body.error?.message ?? `HTTP ${status}`);
    this.name = 'ApiError';
  }
}

export class Client {
  readonly url: string;
  private readonly token?: string;
  /** set when url is unix:PATH */
  private readonly socketPath?: string;

  constructor(opts: ClientOptions = {}) {
    this.url = (opts.url || process.env.FAASCELL_URL || defaultEndpoint()).replace(/\/$/, '');
    if (this.url.startsWith('unix:')) this.socketPath = this.url.slice('unix:'.length);
    this.token = opts.token ?? process.env.FAASCELL_TOKEN;
  }

  /** Raw request: returns status and parsed body without throwing on HTTP errors. */
  async raw(method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }> {
    const headers: Record<string, string> = {};
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    let res: { status: number; text(): Promise<string> };
    const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    const send = (): Promise<{ status: number; text(): Promise<string> }> => (this.socketPath ? viaSocket(this.socketPath, method, path, headers, payload) : fetch(this.url + path, { method, headers, body: payload }));
    try {
      try {
        res = await send();
      } catch (err) {
        // A kept-alive socket the server had just closed (an overloaded event loop makes
        // the client's idle timer late): resend only what is idempotent, evict included.
        if (method === 'POST' && !/\/evict$/.test(path)) throw err;
        res = await send();
      }
    } catch (err) {
      throw new Error(`cannot reach the FaaSCell daemon at ${this.url} (${(err as Error).cause ? String((err as Error).cause) : (err as Error).message}); start it with \`faascell serve\` or set --url / FAASCELL_URL (http://HOST:PORT or unix:PATH)`);
    }
    const text = await res.text();
    let parsed: unknown = undefined;
    if (text) {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = { error: { message: text } };
      }
    }
    return { status: res.status, body: parsed };
  }

  async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const r = await this.raw(method, path, body);
    if (r.status >= 400) throw new ApiError(r.status, (r.body ?? {}));
    return r.body as T;
  }

  deploy(name: string, code: Buffer, opts: { codeKind?: 'js' | 'py' | 'zip' | 'tgz'; runtime?: string; entry?: string; memoryMiB?: number; vcpus?: number; timeoutMs?: number; maxInstances?: number; share?: number; env?: Record<string, string>; network?: { mode: 'none' | 'egress'; allow?: string[] } } = {}): Promise<Record<string, unknown>> {
    return this.call('PUT', `/v1/functions/${encodeURIComponent(name)}`, { code: code.toString('base64'), ...opts });
  }

  invoke(name: string, params: unknown = {}): Promise<{ status: number; body: InvokeBody }> {
    return this.raw('POST', `/v1/functions/${encodeURIComponent(name)}/invoke`, params) as Promise<{ status: number; body: InvokeBody }>;
  }

  async waitHealthy(timeoutMs: number): Promise<void> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      try {
        const r = await this.raw('GET', '/healthz');
        if (r.status === 200) return;
      } catch {
        // not up yet
      }
      if (Date.now() > end) throw new Error(`daemon at ${this.url} not healthy after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/** One request over a unix socket (fetch cannot reach one without undici's own Agent). */
function viaSocket(socketPath: string, method: string, p: string, headers: Record<string, string>, body: string | undefined): Promise<{ status: number; text(): Promise<string> }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, method, path: p, headers: { ...headers, host: 'localhost', ...(body !== undefined ? { 'content-length': String(Buffer.byteLength(body)) } : {}) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode ?? 0, text: () => Promise.resolve(text) });
      });
    });
    req.on('error', (err) => reject(Object.assign(new Error(err.message), { cause: err })));
    req.end(body);
  });
}

export interface InvokeBody {
  result?: unknown;
  error?: { code: string; message: string; field?: string };
  activation?: {
    id: string;
    function: string;
    /** issue 21: nodejs20 or python3 */
    functionRuntime?: string;
    startPath?: 'cold' | 'warm' | 'restore';
    accelerator?: string;
    status: string;
    totalMs: number;
    runMs?: number;
    overheadMs?: number;
    timings: Record<string, number>;
    timestamps: Record<string, number>;
    startDetails?: Record<string, number | string>;
    logs: string[];
    vmId?: string;
    snapshot?: { id: string; tier: string };
    /** issue 13: the cluster node that ran it, and how it travelled through the broker */
    node?: string;
    cluster?: ActivationRecord['cluster'];
  };
}
