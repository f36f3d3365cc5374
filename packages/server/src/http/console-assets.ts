import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, extname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Context } from 'hono';
import { AirlockError } from '@airlock/core';

/** Where the console is served. */
export const CONSOLE_PATH = '/console';

/** The console's own files (HTML, its ES modules, CSS), beside src/ in this package (shipped with it). */
const CONSOLE_DIR = fileURLToPath(new URL('../../console/', import.meta.url));

/**
 * The front-end libraries, served from this daemon's node_modules under /console/vendor/ (no CDN): each URL
 * maps to one file of one package, the ES module build. index.html's import map names them.
 */
const VENDOR: Record<string, { pkg: string; file: string }> = {
  'preact.mjs': { pkg: 'preact', file: 'dist/preact.module.js' },
  'preact-hooks.mjs': { pkg: 'preact', file: 'hooks/dist/hooks.module.js' },
  'htm.mjs': { pkg: 'htm', file: 'dist/htm.module.js' },
  'uplot.mjs': { pkg: 'uplot', file: 'dist/uPlot.esm.js' },
  'uplot.css': { pkg: 'uplot', file: 'dist/uPlot.min.css' },
};

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

export interface ConsoleAssets {
  /** URL path (`/console/app.js`) -> body and content type. Nothing outside this map is served. */
  files: Map<string, { body: Uint8Array; type: string }>;
  /** The Content-Security-Policy of every console response. */
  csp: string;
}

let loaded: ConsoleAssets | undefined;

/**
 * Reads the console and its vendored modules once per process (the first app built), so a request never
 * touches the file system and no path from a URL is ever joined to a directory.
 */
export function consoleAssets(): ConsoleAssets {
  return (loaded ??= loadConsoleAssets());
}

function loadConsoleAssets(): ConsoleAssets {
  const files = new Map<string, { body: Uint8Array; type: string }>();
  for (const entry of readdirSync(CONSOLE_DIR, { recursive: true, withFileTypes: true })) {
    const type = TYPES[extname(entry.name)];
    if (!entry.isFile() || !type) continue;
    const path = join(entry.parentPath, entry.name);
    files.set(`${CONSOLE_PATH}/${relative(CONSOLE_DIR, path).split(sep).join('/')}`, { body: readFileSync(path), type });
  }
  const require = createRequire(import.meta.url);
  for (const [name, { pkg, file }] of Object.entries(VENDOR)) {
    const body = readFileSync(join(packageDir(require, pkg), file));
    files.set(`${CONSOLE_PATH}/vendor/${name}`, { body, type: TYPES[extname(name)]! });
  }
  const index = files.get(`${CONSOLE_PATH}/index.html`);
  if (!index) throw new Error(`console: ${CONSOLE_DIR}index.html is missing`);
  return { files, csp: contentSecurityPolicy(Buffer.from(index.body).toString('utf8')) };
}

/**
 * No inline script runs: scripts load from this origin only. The one inline element is the import map (data,
 * not code), allowed by its hash, which browsers require for an inline import map under `script-src`.
 * Styles from this origin only (uPlot and Preact set styles through the CSSOM, which CSP does not restrict).
 */
export function contentSecurityPolicy(indexHtml: string): string {
  const importMap = /<script type="importmap">([\s\S]*?)<\/script>/.exec(indexHtml)?.[1];
  if (importMap === undefined) throw new Error('console: index.html has no import map');
  const hash = createHash('sha256').update(importMap).digest('base64');
  return [
    "default-src 'none'",
    `script-src 'self' 'sha256-${hash}'`,
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; ');
}

/** The directory of an installed package (its package.json), found from wherever Node resolves it. */
function packageDir(require: NodeJS.Require, pkg: string): string {
  let dir = dirname(require.resolve(pkg));
  while (!existsSync(join(dir, 'package.json')) || (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string }).name !== pkg) {
    const up = dirname(dir);
    if (up === dir) throw new Error(`console: package ${pkg} not found`);
    dir = up;
  }
  return dir;
}

/** GET /console/…: a file of the console, with the headers that keep the page to itself. */
export function serveConsole(c: Context): Response {
  const assets = consoleAssets();
  const path = c.req.path === CONSOLE_PATH || c.req.path === `${CONSOLE_PATH}/` ? `${CONSOLE_PATH}/index.html` : c.req.path;
  const file = assets.files.get(path);
  if (!file) throw new AirlockError('not_found', 'No such console file.');
  return new Response(file.body, {
    headers: {
      'content-type': file.type,
      'content-security-policy': assets.csp,
      'x-content-type-options': 'nosniff',
      'x-frame-options': 'DENY',
      'referrer-policy': 'no-referrer',
      'cross-origin-opener-policy': 'same-origin',
      'cross-origin-resource-policy': 'same-origin',
      // Revalidated each load: a daemon upgrade must not leave an old console in the browser's cache.
      'cache-control': 'no-cache',
    },
  });
}
