// Builds the packages an outsider installs (the SDK, the CLI and the workspace packages the CLI depends on) to
// JavaScript with type declarations and packs each into an npm tarball. The workspace itself keeps running the
// .ts sources (package exports point at src/); only the staged copies point at dist/. Design: docs/packaging.md.
// Usage: node scripts/pack.ts [--out DIR]   (default DIR: .pack/, beside this checkout's packages/)
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..');
/** Static files a package serves as they are, beside its src/ (the server's operator console): shipped unchanged. */
const STATIC_DIR = 'console';

/** What is published; every workspace package these depend on is published with them. */
const PUBLISHED_ROOTS = ['@airlock/sdk', '@airlock/cli'];

interface PackageJson {
  name: string;
  version: string;
  description?: string;
  type?: string;
  private?: boolean;
  engines?: Record<string, string>;
  exports: Record<string, string>;
  bin?: Record<string, string>;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, unknown>;
  optionalDependencies?: Record<string, string>;
  [field: string]: unknown;
}

/** The package.json as published: exports point at built files. */
export type PublishedManifest = Omit<PackageJson, 'exports'> & { exports: Record<string, { types: string; default: string }>; files: string[] };

export interface WorkspacePackage {
  dir: string;
  /** The folder name under packages/ (also its folder in the build output). */
  folder: string;
  json: PackageJson;
}

export function workspacePackages(root = ROOT): Map<string, WorkspacePackage> {
  const out = new Map<string, WorkspacePackage>();
  for (const folder of readdirSync(join(root, 'packages'))) {
    const file = join(root, 'packages', folder, 'package.json');
    if (!existsSync(file)) continue;
    const json = JSON.parse(readFileSync(file, 'utf8')) as PackageJson;
    out.set(json.name, { dir: join(root, 'packages', folder), folder, json });
  }
  return out;
}

/** The published packages: the roots and every workspace package they depend on, dependencies first. */
export function publishedPackages(all: Map<string, WorkspacePackage>, roots = PUBLISHED_ROOTS): WorkspacePackage[] {
  const ordered: WorkspacePackage[] = [];
  const visit = (name: string) => {
    const pkg = all.get(name);
    if (!pkg) throw new Error(`${name} is not a workspace package`);
    if (ordered.includes(pkg)) return;
    for (const dep of Object.keys({ ...pkg.json.dependencies, ...pkg.json.peerDependencies })) if (all.has(dep)) visit(dep);
    ordered.push(pkg);
  };
  roots.forEach(visit);
  return ordered;
}

/** `./src/x.ts` -> the built module and its declarations. */
function builtExport(source: string): { types: string; default: string } {
  const match = /^\.\/src\/(.+)\.ts$/.exec(source);
  if (!match) throw new Error(`export ${source} does not point at a .ts file under src/`);
  return { types: `./dist/${match[1]}.d.ts`, default: `./dist/${match[1]}.js` };
}

/**
 * The package.json as published: exports and bin point at dist/, workspace dependencies ("*") become the
 * exact version packed beside them (they are released together), and only dist/, bin/ and console/ ship.
 */
export function publishedManifest(pkg: WorkspacePackage, all: Map<string, WorkspacePackage>): PublishedManifest {
  const { private: _private, exports, dependencies, devDependencies: _dev, scripts: _scripts, ...rest } = pkg.json;
  const pinned = Object.fromEntries(Object.entries(dependencies ?? {}).map(([name, range]) => [name, all.get(name)?.json.version ?? range]));
  return {
    ...rest,
    exports: Object.fromEntries(Object.entries(exports).map(([path, source]) => [path, builtExport(source)])),
    ...(Object.keys(pinned).length ? { dependencies: pinned } : {}),
    files: ['dist', ...(pkg.json.bin ? ['bin'] : []), ...(existsSync(join(pkg.dir, STATIC_DIR)) ? [STATIC_DIR] : [])],
  };
}

/** One tsc run over every published package: rewriting `./x.ts` imports to `./x.js`, with declarations. */
function compile(packages: WorkspacePackage[], buildDir: string): void {
  const tsconfig = join(buildDir, 'tsconfig.json');
  writeFileSync(
    tsconfig,
    JSON.stringify({
      extends: join(ROOT, 'tsconfig.json'),
      compilerOptions: {
        noEmit: false,
        declaration: true,
        rewriteRelativeImportExtensions: true,
        rootDir: join(ROOT, 'packages'),
        outDir: join(buildDir, 'out'),
        // The workspace config loads @types/node from the checkout; the build dir lives inside it.
        typeRoots: [join(ROOT, 'node_modules/@types')],
      },
      include: packages.map((p) => join(p.dir, 'src/**/*.ts')),
      // Tests, shared test suites (*.test-suite.ts) and test helpers (any testing/ folder under src/) never ship.
      exclude: packages.flatMap((p) => [join(p.dir, 'src/**/*.test.ts'), join(p.dir, 'src/**/*.test-suite.ts'), join(p.dir, 'src/**/testing/**')]),
    }),
  );
  execFileSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', tsconfig], { stdio: 'inherit' });
  rewriteDeclarationImports(join(buildDir, 'out'));
}

/**
 * tsc rewrites `./x.ts` to `./x.js` in the JavaScript it emits but not in declarations (microsoft/TypeScript
 * #61037, open: TypeScript itself reads `.ts` specifiers in a .d.ts, other tools and editors do not), so the
 * .d.ts files get the same rewrite here: every relative specifier ending in .ts, in `from '…'` and `import('…')`.
 */
function rewriteDeclarationImports(dir: string): void {
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.d.ts')) continue;
    const file = join(entry.parentPath, entry.name);
    const text = readFileSync(file, 'utf8');
    const rewritten = text.replace(/((?:from|import\()\s*['"]\.{1,2}\/[^'"]*?)\.ts(['"])/g, '$1.js$2');
    if (rewritten !== text) writeFileSync(file, rewritten);
  }
}

/** Builds, stages and packs; returns the tarball paths, dependencies first. */
export function pack(outDir = join(ROOT, '.pack')): string[] {
  const all = workspacePackages();
  const packages = publishedPackages(all);
  const buildDir = join(outDir, 'build');
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(buildDir, { recursive: true });
  compile(packages, buildDir);

  const tarballs: string[] = [];
  for (const pkg of packages) {
    const stage = join(outDir, 'stage', pkg.folder);
    cpSync(join(buildDir, 'out', pkg.folder, 'src'), join(stage, 'dist'), { recursive: true });
    if (pkg.json.bin) cpSync(join(pkg.dir, 'bin'), join(stage, 'bin'), { recursive: true });
    if (existsSync(join(pkg.dir, STATIC_DIR))) cpSync(join(pkg.dir, STATIC_DIR), join(stage, STATIC_DIR), { recursive: true });
    writeFileSync(join(stage, 'package.json'), `${JSON.stringify(publishedManifest(pkg, all), null, 2)}\n`);
    if (existsSync(join(pkg.dir, 'README.md'))) cpSync(join(pkg.dir, 'README.md'), join(stage, 'README.md'));
    const answer = execFileSync('npm', ['pack', '--json', '--pack-destination', outDir], { cwd: stage, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    const [{ filename }] = JSON.parse(answer) as [{ filename: string }];
    tarballs.push(join(outDir, filename));
  }
  return tarballs;
}

if (import.meta.main) {
  const at = process.argv.indexOf('--out');
  const tarballs = pack(at >= 0 ? resolve(process.argv[at + 1]!) : undefined);
  for (const t of tarballs) console.log(t);
}
