// Where a daemon keeps its state by default, and its API socket's name: a module of its own without the
// configuration schema (zod), so the CLI's client can read them without loading the schema (issue 20: start-up).
import os from 'node:os';
import path from 'node:path';

export function defaultStateDir(): string {
  return process.env.FAASCELL_STATE_DIR ?? path.join(os.homedir(), '.local', 'state', 'faascell');
}
export function defaultCacheDir(): string {
  return process.env.FAASCELL_CACHE_DIR ?? path.join(os.homedir(), '.cache', 'faascell');
}
export const API_SOCKET_NAME = 'api.sock';
