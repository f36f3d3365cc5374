// Which third-party modules a workspace package imports without declaring them in its own package.json.
// A package installed from npm gets only what it declares, so every import of a shipped file (src/, not tests
// nor src/testing/) must name a declared dependency, peer or optional dependency. Test-only imports are
// declared at the root (devDependencies).
import { readdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join, relative } from 'node:path';
import ts from 'typescript';
import type { WorkspacePackage } from './pack.ts';

export interface UndeclaredImport {
  /** The package name as it would appear in package.json (`@scope/name` or `name`). */
  dependency: string;
  /** The first shipped file (relative to the package) that imports it. */
  file: string;
}

/** Shipped sources: src/**\/*.ts without tests and test helpers. */
export function shippedSources(pkg: WorkspacePackage): string[] {
  const src = join(pkg.dir, 'src');
  return readdirSync(src, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts') && !f.split('/').includes('testing'))
    .map((f) => join(src, f));
}

function packageNameOf(specifier: string): string | undefined {
  if (specifier.startsWith('.') || specifier.startsWith('/') || specifier.startsWith('node:') || builtinModules.includes(specifier.split('/')[0]!)) return undefined;
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

/** Uses the TypeScript scanner (static imports, `import()` and `import type`), not a regex over the text. */
export function undeclaredImports(pkg: WorkspacePackage): UndeclaredImport[] {
  const declared = new Set(Object.keys({ ...pkg.json.dependencies, ...pkg.json.peerDependencies, ...pkg.json.optionalDependencies }));
  const found = new Map<string, string>();
  for (const file of shippedSources(pkg)) {
    const { importedFiles } = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
    for (const { fileName } of importedFiles) {
      const name = packageNameOf(fileName);
      if (name && name !== pkg.json.name && !declared.has(name) && !found.has(name)) found.set(name, relative(pkg.dir, file));
    }
  }
  return [...found].map(([dependency, file]) => ({ dependency, file }));
}
