// Types of scripts/build-lib.mjs (plain JavaScript: it runs before anything is built).
export const SOURCE_DIRS: string[];
export const DIST: string;
export function listSources(root: string): string[];
export function sourceStamp(root: string, files?: string[]): string;
export function buildState(root: string): 'fresh' | 'missing' | 'stale';
export function build(root: string, opts?: { log?: (line: string) => void }): Promise<{ built: boolean; files: number; ms: number }>;
export function ensureBuilt(root: string): Promise<void>;
