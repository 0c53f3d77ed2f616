// A small typed client for Firecracker's REST API, which it serves as HTTP/1.1
// over a unix socket (`--api-sock`). Written against the published swagger
// definition (src/firecracker/swagger/firecracker.yaml); only the calls the
// driver needs are typed.

import http from 'node:http';
import { monoNow } from '../../core/clock.js';
import { DeadlineExceededError } from '../types.js';

/** PUT /boot-source. Pre-boot only. */
export interface BootSource {
  kernel_image_path: string;
  initrd_path?: string;
  boot_args?: string;
}

/** PUT /drives/{drive_id} (virtio-blk variant). Pre-boot only. */
export interface Drive {
  drive_id: string;
  path_on_host: string;
  /** true makes Firecracker append root=/dev/vda to the cmdline; the driver boots from the initramfs instead. */
  is_root_device: boolean;
  is_read_only: boolean;
  cache_type?: 'Unsafe' | 'Writeback';
  io_engine?: 'Sync' | 'Async';
}

/** PUT /machine-config. Pre-boot only. */
export interface MachineConfiguration {
  vcpu_count: number;
  mem_size_mib: number;
  smt?: boolean;
  track_dirty_pages?: boolean;
  huge_pages?: 'None' | 'Transparent' | '2M';
}

/** PUT /vsock. Pre-boot only. Firecracker creates and listens on uds_path once the VM starts. */
export interface Vsock {
  guest_cid: number;
  uds_path: string;
}

export type ActionType = 'InstanceStart' | 'SendCtrlAltDel' | 'FlushMetrics';

/** PATCH /vm. */
export type VmState = 'Paused' | 'Resumed';

/** PUT /snapshot/create. The VM must be Paused. */
export interface SnapshotCreateParams {
  snapshot_type?: 'Full' | 'Diff';
  /** The microVM (device) state file. */
  snapshot_path: string;
  /** Guest memory. */
  mem_file_path: string;
}

/** PUT /snapshot/load. Only on a fresh Firecracker process (nothing configured yet but logger/metrics). */
export interface SnapshotLoadParams {
  snapshot_path: string;
  /** File: Firecracker maps the memory file MAP_PRIVATE (copy-on-write). Uffd: a page-fault handler serves it. */
  mem_backend: { backend_type: 'File' | 'Uffd'; backend_path: string };
  resume_vm?: boolean;
  track_dirty_pages?: boolean;
  /** Newer Firecracker only: rebinds the vsock device to another socket path on restore. */
  vsock_override?: { uds_path: string };
}

/** GET / */
export interface InstanceInfo {
  app_name: string;
  id: string;
  state: 'Not started' | 'Running' | 'Paused';
  vmm_version: string;
}

/** GET /version */
export interface FirecrackerVersion {
  firecracker_version: string;
}

/** A non-2xx answer, or a transport failure, of one API call. */
export class FirecrackerApiError extends Error {
  constructor(
    message: string,
    readonly method: string,
    readonly path: string,
    /** HTTP status; undefined when the request never got an answer (socket missing, timeout...). */
    readonly statusCode?: number,
    /** Firecracker's `fault_message` from the error body, if any. */
    readonly faultMessage?: string,
    /** errno code of a transport failure (ENOENT, ECONNREFUSED...), or 'ETIMEDOUT'. */
    readonly code?: string,
  ) {
    super(message);
    this.name = 'FirecrackerApiError';
  }
}

export interface ApiResponse {
  status: number;
  /** Parsed JSON body, or undefined for an empty body (Firecracker answers 204 to every successful PUT/PATCH). */
  body: unknown;
}

export interface FirecrackerApiOptions {
  /** Default per-request timeout (ms). */
  timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 5_000;
/** Writing a full snapshot copies all of guest RAM to disk: give it longer. */
const SNAPSHOT_TIMEOUT_MS = 120_000;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class FirecrackerApi {
  readonly timeoutMs: number;

  constructor(
    readonly socketPath: string,
    opts: FirecrackerApiOptions = {},
  ) {
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  /** One HTTP exchange. Rejects with FirecrackerApiError on a non-2xx status, a transport error or a timeout. */
  request(method: 'GET' | 'PUT' | 'PATCH', path: string, body?: unknown, timeoutMs = this.timeoutMs): Promise<ApiResponse> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body), 'utf8');
    const headers: Record<string, string | number> = { Accept: 'application/json' };
    if (payload) {
      headers['Content-Type'] = 'application/json';
      // Explicit length: Node would otherwise send Transfer-Encoding: chunked,
      // which Firecracker's minimal HTTP server does not accept.
      headers['Content-Length'] = payload.length;
    }
    return new Promise<ApiResponse>((resolve, reject) => {
      let settled = false;
      const fail = (e: FirecrackerApiError) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        req.destroy();
        reject(e);
      };
      // agent:false: one connection per call, nothing pooled to leak after the VMM dies.
      const req = http.request({ socketPath: this.socketPath, method, path, headers, agent: false, host: 'localhost' }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (e) => fail(new FirecrackerApiError(`Firecracker API ${method} ${path}: ${e.message}`, method, path)));
        res.on('end', () => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          const status = res.statusCode ?? 0;
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown;
          if (text.trim() !== '') {
            try {
              parsed = JSON.parse(text);
            } catch {
              parsed = text;
            }
          }
          if (status >= 200 && status < 300) {
            resolve({ status, body: parsed });
            return;
          }
          const fault =
            parsed !== null && typeof parsed === 'object' && typeof (parsed as { fault_message?: unknown }).fault_message === 'string'
              ? (parsed as { fault_message: string }).fault_message
              : typeof parsed === 'string'
                ? parsed
                : undefined;
          reject(
            new FirecrackerApiError(
              `Firecracker API ${method} ${path} failed with ${status}${fault ? `: ${fault}` : ''}`,
              method,
              path,
              status,
              fault,
            ),
          );
        });
      });
      const timer = setTimeout(
        () => fail(new FirecrackerApiError(`Firecracker API ${method} ${path} timed out after ${timeoutMs} ms`, method, path, undefined, undefined, 'ETIMEDOUT')),
        timeoutMs,
      );
      req.on('error', (e: NodeJS.ErrnoException) =>
        fail(new FirecrackerApiError(`Firecracker API ${method} ${path}: ${e.message}`, method, path, undefined, undefined, e.code)),
      );
      req.end(payload);
    });
  }

  putBootSource(b: BootSource): Promise<ApiResponse> {
    return this.request('PUT', '/boot-source', b);
  }

  putDrive(d: Drive): Promise<ApiResponse> {
    return this.request('PUT', `/drives/${encodeURIComponent(d.drive_id)}`, d);
  }

  putMachineConfig(m: MachineConfiguration): Promise<ApiResponse> {
    return this.request('PUT', '/machine-config', m);
  }

  putVsock(v: Vsock): Promise<ApiResponse> {
    return this.request('PUT', '/vsock', v);
  }

  action(type: ActionType): Promise<ApiResponse> {
    return this.request('PUT', '/actions', { action_type: type });
  }

  instanceStart(): Promise<ApiResponse> {
    return this.action('InstanceStart');
  }

  /** x86 only: the guest sees a keyboard Ctrl+Alt+Del (a clean shutdown if it handles it). */
  sendCtrlAltDel(): Promise<ApiResponse> {
    return this.action('SendCtrlAltDel');
  }

  patchVm(state: VmState): Promise<ApiResponse> {
    return this.request('PATCH', '/vm', { state });
  }

  pause(): Promise<ApiResponse> {
    return this.patchVm('Paused');
  }

  resume(): Promise<ApiResponse> {
    return this.patchVm('Resumed');
  }

  createSnapshot(p: SnapshotCreateParams, timeoutMs = Math.max(this.timeoutMs, SNAPSHOT_TIMEOUT_MS)): Promise<ApiResponse> {
    return this.request('PUT', '/snapshot/create', p, timeoutMs);
  }

  loadSnapshot(p: SnapshotLoadParams, timeoutMs = Math.max(this.timeoutMs, SNAPSHOT_TIMEOUT_MS)): Promise<ApiResponse> {
    return this.request('PUT', '/snapshot/load', p, timeoutMs);
  }

  async describeInstance(timeoutMs?: number): Promise<InstanceInfo> {
    return (await this.request('GET', '/', undefined, timeoutMs)).body as InstanceInfo;
  }

  async getVersion(): Promise<FirecrackerVersion> {
    return (await this.request('GET', '/version')).body as FirecrackerVersion;
  }

  /**
   * Polls GET / until the API answers: Firecracker creates the socket a few
   * milliseconds after exec. `abort` returns a reason to give up early (the
   * process already exited).
   */
  async waitReady(timeoutMs: number, opts: { retryMs?: number; abort?: () => string | undefined } = {}): Promise<InstanceInfo> {
    const deadline = monoNow() + timeoutMs;
    const retryMs = opts.retryMs ?? 5;
    let last: unknown;
    for (;;) {
      const why = opts.abort?.();
      if (why) throw new Error(`Firecracker API at ${this.socketPath} never came up: ${why}`);
      try {
        return await this.describeInstance(Math.min(1_000, Math.max(50, deadline - monoNow())));
      } catch (e) {
        last = e;
        // Only "not there yet" is worth retrying; an HTTP error means it is up but unhappy.
        if (!(e instanceof FirecrackerApiError) || e.statusCode !== undefined) throw e;
      }
      if (monoNow() + retryMs > deadline) {
        throw new DeadlineExceededError(`Firecracker API at ${this.socketPath} not ready after ${timeoutMs} ms (${(last as Error).message})`);
      }
      await sleep(retryMs);
    }
  }
}
