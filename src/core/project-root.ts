// The project root (where package.json and guest/ live), found by walking up from this
// module: the same answer from the sources (src/core/) and from the build (dist/src/core/),
// so files beside the sources (guest/, functions/, src/ui/client/) are found from either.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

let found: string | undefined;

export function projectRoot(): string {
  if (found) return found;
  let d = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(path.join(d, 'guest', 'image', 'init')) && existsSync(path.join(d, 'package.json'))) return (found = d);
    const up = path.dirname(d);
    if (up === d) throw new Error(`cannot find the FaaSCell project root (package.json and guest/image/init) above ${fileURLToPath(import.meta.url)}`);
    d = up;
  }
}

/** The package's version, from package.json (one place to change it). */
export function packageVersion(): string {
  return (JSON.parse(readFileSync(path.join(projectRoot(), 'package.json'), 'utf8')) as { version: string }).version;
}
