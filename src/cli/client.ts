// HTTP client for the daemon's API, used by the CLI, the benchmark and the tests.

import type { ActivationRecord } from '../perf/activation.js';

export interface ClientOptions {
  url?: string;
  token?: string;
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

  constructor(opts: ClientOptions = {}) {
    this.url = (opts.url ?? process.env.FAASCELL_URL ?? 'http://127.0.0.1:8080').replace(/\/$/, '');
    this.token = opts.token ?? process.env.FAASCELL_TOKEN;
  }

  /** Raw request: returns status and parsed body without throwing on HTTP errors. */
  async raw(method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }> {
    const headers: Record<string, string> = {};
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    let res: Response;
    const send = (): Promise<Response> => fetch(this.url + path, { method, headers, body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body) });
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
      throw new Error(`cannot reach the FaaSCell daemon at ${this.url} (${(err as Error).cause ? String((err as Error).cause) : (err as Error).message}); start it with \`faascell serve\` or set --url / FAASCELL_URL`);
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

  deploy(name: string, code: Buffer, opts: { codeKind?: 'js' | 'zip' | 'tgz'; entry?: string; memoryMiB?: number; vcpus?: number; timeoutMs?: number; maxInstances?: number; share?: number; env?: Record<string, string>; network?: { mode: 'none' | 'egress'; allow?: string[] } } = {}): Promise<Record<string, unknown>> {
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

export interface InvokeBody {
  result?: unknown;
  error?: { code: string; message: string; field?: string };
  activation?: {
    id: string;
    function: string;
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
