// The wire protocol between the host (Worker) and the guest agent.
//
// Transport: a named virtio-serial port (/dev/vportNpM in the guest, a per-VM unix
// socket on the host). Framing: one JSON object per line, UTF-8, '\n'
// terminated. JSON.stringify never emits a raw newline, so a line is a message.
// The host ignores any line that does not parse as a JSON object (e.g. tty
// echo before the guest has put the console into raw mode).

/** Sent by the agent, unsolicited, once it is listening. */
export interface AgentReady {
  type: 'ready';
  agentVersion: string;
  /** the Node agent: its Node.js version */
  node?: string;
  /** the Python agent (issue 21, guest/agent-python): its Python version */
  python?: string;
  /** Guest uptime (ms since the kernel started) at each milestone of the boot. */
  uptimeMs: {
    /** /init started (the kernel handed over to user space). */
    init: number;
    /** /init started Node (absent from agents older than issue 9). */
    exec?: number;
    /** the agent process started executing JavaScript. */
    agentStart: number;
    /** the agent sent this message. */
    ready: number;
  };
}

/** A function's code as it is shipped into the guest: relative path -> base64 content. */
export type CodeFiles = Record<string, string>;

export type AgentRequest =
  | {
      id: number;
      op: 'init';
      files: CodeFiles;
      /** Relative path of the module to load (a single file is "index.js"). */
      main: string;
      /** Name of the exported (or top-level) function to call, OpenWhisk's default is "main". */
      entry: string;
      env: Record<string, string>;
    }
  | {
      id: number;
      op: 'run';
      activationId: string;
      params: unknown;
      /** Wall-clock budget the host gives this run; the host enforces it too (by killing the VM). */
      deadlineMs: number;
      /**
       * A restored clone's resync carried by its first run (added with issue 9; agents before it
       * ignore the member, so send it only to images that have it — every image built since):
       * the same fields and semantics as the `resync` request, applied before any user code runs,
       * one message instead of two. If it fails, the function does not run and the reply is an
       * error of kind 'state'. The reply then has a `resync` member with the agent's step timings.
       */
      resync?: ResyncFields;
    }
  | { id: number; op: 'ping' }
  | ({
      /** Sent after a snapshot restore, before any user code runs: fixes the clock and reseeds randomness. */
      id: number;
      op: 'resync';
    } & ResyncFields);

/** What a restored clone needs before user code runs: the host's time and fresh entropy. */
export interface ResyncFields {
  epochMs: number;
  /** 32 random bytes, base64. */
  seed: string;
  /**
   * 'now' (default): set the kernel clock and reseed the kernel CRNG before replying
   * (before the function runs, when carried by a run).
   * 'deferred': correct the clock JavaScript sees (Date) and reseed the agent's JS
   * randomness now, and do the kernel part after the next run has replied (or
   * after a second of idleness): the kernel path is ~40 % of a TCG restore.
   */
  kernel?: 'now' | 'deferred';
}

/** A request without its id (the channel assigns ids). */
export type AgentRequestBody = AgentRequest extends infer R ? (R extends AgentRequest ? Omit<R, 'id'> : never) : never;

export type AgentErrorKind =
  /** the function threw or its Promise rejected */
  | 'application'
  /** the code could not be loaded, or the entry point is missing */
  | 'init'
  /** the request is not valid in the agent's current state (run before init, init twice, concurrent run) */
  | 'state'
  /** a malformed request */
  | 'protocol'
  /** the function ended the agent's process (process.exit) while this request ran; `exitCode` says how */
  | 'exit';

export type AgentReply =
  | {
      id: number;
      ok: true;
      /** run: the function's result (a JSON value). */
      result?: unknown;
      /** run: console output captured during this run, one entry per line. */
      logs?: string[];
      /** guest-measured milliseconds of the operation */
      durationMs?: number;
      /** run with a resync: when each resync step finished, ms after the agent received the run */
      resync?: Record<string, number>;
    }
  | {
      id: number;
      ok: false;
      /** exitCode: the function called process.exit (or the agent is exiting) while this request ran */
      error: { kind: AgentErrorKind; message: string; stack?: string; exitCode?: number };
      logs?: string[];
      durationMs?: number;
    };

export const AGENT_PROTOCOL_VERSION = 1;
