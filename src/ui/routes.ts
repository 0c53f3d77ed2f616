// Routes of the live dashboard: the page (/ui), its script (bundled from
// src/ui/client/app.ts with the project's esbuild on first request, then kept
// in memory), the event stream (/ui/events) and a one-shot state (/ui/state).
// The page and its script carry no data and are served without the API token;
// the page sends the token (from its URL fragment, #token=…) on its data requests.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { projectRoot } from '../core/project-root.js';
import type { FastifyInstance } from 'fastify';
import type { DashboardHub, DashboardState } from './hub.js';

// from the sources, also when the daemon runs the build in dist/
const CLIENT_DIR = path.join(projectRoot(), 'src', 'ui', 'client');

/** Paths served without the bearer token (static, no data). */
export const PUBLIC_UI_PATHS = new Set(['/ui', '/ui/', '/ui/app.js']);

export async function bundleDashboard(): Promise<string> {
  const { build } = await import('esbuild');
  const r = await build({
    entryPoints: [path.join(CLIENT_DIR, 'app.ts')],
    bundle: true,
    write: false,
    format: 'iife',
    platform: 'browser',
    target: 'es2022',
    minify: true,
    legalComments: 'none',
    logLevel: 'silent',
  });
  return r.outputFiles[0]!.text;
}

export function registerDashboard(app: FastifyInstance, deps: { hub: DashboardHub; readState: () => Promise<DashboardState> }): void {
  let script: Promise<string> | undefined;
  const page = (): string => readFileSync(path.join(CLIENT_DIR, 'index.html'), 'utf8');

  app.get('/ui', async (_req, reply) => reply.type('text/html; charset=utf-8').header('cache-control', 'no-cache').send(page()));
  app.get('/ui/', async (_req, reply) => reply.redirect('/ui'));
  app.get('/ui/app.js', async (_req, reply) => {
    script ??= bundleDashboard();
    try {
      return reply.type('text/javascript; charset=utf-8').header('cache-control', 'no-cache').send(await script);
    } catch (err) {
      script = undefined; // try again next time
      throw err;
    }
  });
  app.get('/ui/state', async () => deps.readState());
  app.get('/ui/events', async (req, reply) => {
    reply.hijack();
    req.raw.socket.setKeepAlive(true);
    await deps.hub.attach(reply.raw);
  });
}
