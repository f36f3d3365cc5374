// Compiles the testbed's Solidity with solc-js (no committed bytecode). solc-js is slow (seconds), so the
// output is cached under node_modules/.cache (gitignored), keyed by a hash of every source and the
// compiler version: editing a contract or upgrading solc or OpenZeppelin recompiles.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Abi, Hex } from 'viem';

export interface CompiledContract {
  abi: Abi;
  /** Creation bytecode. */
  bytecode: Hex;
  /** Runtime bytecode (what `anvil_setCode` installs). */
  deployedBytecode: Hex;
}

export type ContractName = 'TestUSDC' | 'Multicall3Lite' | 'TestSwapRouter';

const require = createRequire(import.meta.url);
const CONTRACTS_DIR = fileURLToPath(new URL('../contracts/', import.meta.url));
const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CACHE_DIR = join(REPO_ROOT, 'node_modules', '.cache', 'airlock-x402-testbed');
// Anvil's default hardfork runs cancun bytecode; newer solc defaults may emit opcodes it lacks.
const EVM_VERSION = 'cancun';

let loaded: Record<ContractName, CompiledContract> | undefined;

/** Every testbed contract, compiled once per source hash. */
export function compiledContracts(): Record<ContractName, CompiledContract> {
  if (loaded) return loaded;
  const sources = Object.fromEntries(readdirSync(CONTRACTS_DIR).filter((f) => f.endsWith('.sol')).sort().map((f) => [f, readFileSync(join(CONTRACTS_DIR, f), 'utf8')]));
  // Versions from package.json: loading solc itself (a large wasm) is what the cache is there to avoid.
  const solcVersion = (require('solc/package.json') as { version: string }).version;
  const ozVersion = (require('@openzeppelin/contracts/package.json') as { version: string }).version;
  const key = createHash('sha256').update(JSON.stringify({ sources, solcVersion, ozVersion, EVM_VERSION })).digest('hex').slice(0, 24);
  const cacheFile = join(CACHE_DIR, `contracts-${key}.json`);
  if (existsSync(cacheFile)) {
    loaded = JSON.parse(readFileSync(cacheFile, 'utf8')) as Record<ContractName, CompiledContract>;
    return loaded;
  }
  loaded = compile(require('solc') as Solc, sources);
  mkdirSync(CACHE_DIR, { recursive: true });
  // Write then rename: test files run in parallel and may compile at the same time.
  const tmp = `${cacheFile}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(loaded));
  renameSync(tmp, cacheFile);
  return loaded;
}

interface Solc {
  compile(input: string, callbacks: { import(path: string): { contents: string } | { error: string } }): string;
}

function compile(solc: Solc, sources: Record<string, string>): Record<ContractName, CompiledContract> {
  const input = {
    language: 'Solidity',
    sources: Object.fromEntries(Object.entries(sources).map(([file, content]) => [file, { content }])),
    settings: {
      optimizer: { enabled: true, runs: 200 },
      evmVersion: EVM_VERSION,
      outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] } },
    },
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: readImport })) as {
    errors?: { severity: string; formattedMessage: string }[];
    contracts: Record<string, Record<string, { abi: Abi; evm: { bytecode: { object: string }; deployedBytecode: { object: string } } }>>;
  };
  const errors = (output.errors ?? []).filter((e) => e.severity === 'error');
  if (errors.length) throw new Error(`solc failed:\n${errors.map((e) => e.formattedMessage).join('\n')}`);
  const pick = (file: string, name: ContractName): CompiledContract => {
    const c = output.contracts[file]?.[name];
    if (!c) throw new Error(`solc produced no ${name} in ${file}`);
    return { abi: c.abi, bytecode: `0x${c.evm.bytecode.object}`, deployedBytecode: `0x${c.evm.deployedBytecode.object}` };
  };
  return { TestUSDC: pick('TestUSDC.sol', 'TestUSDC'), Multicall3Lite: pick('Multicall3Lite.sol', 'Multicall3Lite'), TestSwapRouter: pick('TestSwapRouter.sol', 'TestSwapRouter') };
}

/** solc's import callback: `@openzeppelin/...` from node_modules; nothing else is reachable. */
function readImport(path: string): { contents: string } | { error: string } {
  if (!path.startsWith('@openzeppelin/contracts/')) return { error: `import outside @openzeppelin/contracts: ${path}` };
  try {
    const pkgDir = dirname(require.resolve('@openzeppelin/contracts/package.json'));
    return { contents: readFileSync(join(pkgDir, path.slice('@openzeppelin/contracts/'.length)), 'utf8') };
  } catch {
    return { error: `not found: ${path}` };
  }
}
