// Compiles the testbed's Solidity with solc-js (no committed bytecode). solc-js is slow (seconds), so the
// output is cached under node_modules/.cache (gitignored), keyed by a hash of every source and the
// compiler version: editing a contract or upgrading solc, OpenZeppelin or Permit2 recompiles.
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

/** Every testbed contract (contracts/*.sol), compiled once per source hash. */
export function compiledContracts(): Record<ContractName, CompiledContract> {
  if (loaded) return loaded;
  const sources = Object.fromEntries(readdirSync(CONTRACTS_DIR).filter((f) => f.endsWith('.sol')).sort().map((f) => [f, readFileSync(join(CONTRACTS_DIR, f), 'utf8')]));
  // Versions from package.json: loading solc itself (a large wasm) is what the cache is there to avoid.
  const solcVersion = (require('solc/package.json') as { version: string }).version;
  const ozVersion = (require('@openzeppelin/contracts/package.json') as { version: string }).version;
  loaded = cached('contracts', { sources, solcVersion, ozVersion, EVM_VERSION }, () => compile(require('solc') as Solc, sources));
  return loaded;
}

/** `build()`'s result, from the cache file named after `prefix` and a hash of `inputs` when there is one. */
function cached<T>(prefix: string, inputs: unknown, build: () => T): T {
  const key = createHash('sha256').update(JSON.stringify(inputs)).digest('hex').slice(0, 24);
  const cacheFile = join(CACHE_DIR, `${prefix}-${key}.json`);
  if (existsSync(cacheFile)) return JSON.parse(readFileSync(cacheFile, 'utf8')) as T;
  const built = build();
  mkdirSync(CACHE_DIR, { recursive: true });
  // Write then rename: test files run in parallel and may compile at the same time.
  const tmp = `${cacheFile}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(built));
  renameSync(tmp, cacheFile);
  return built;
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

export type SoladyContractName = 'SoladyAccount' | 'ERC4337Factory';

const SOLADY_ACCOUNT = 'solady/SoladyAccount.sol';
let solady: Record<SoladyContractName, CompiledContract> | undefined;

/**
 * Solady's ERC4337 account (made concrete by contracts/solady/SoladyAccount.sol) and its ERC4337Factory, from the
 * `solady` npm package, compiled once per (account source, solady version, solc version): the package is pinned,
 * so its version stands for its sources.
 */
export function compiledSolady(): Record<SoladyContractName, CompiledContract> {
  if (solady) return solady;
  const source = readFileSync(join(CONTRACTS_DIR, SOLADY_ACCOUNT), 'utf8');
  const soladyVersion = (require('solady/package.json') as { version: string }).version;
  const solcVersion = (require('solc/package.json') as { version: string }).version;
  solady = cached('solady', { source, soladyVersion, solcVersion, EVM_VERSION }, () => compileSolady(require('solc') as Solc, source));
  return solady;
}

function compileSolady(solc: Solc, source: string): Record<SoladyContractName, CompiledContract> {
  const input = {
    language: 'Solidity',
    sources: { [SOLADY_ACCOUNT]: { content: source } },
    settings: {
      optimizer: { enabled: true, runs: 200 },
      evmVersion: EVM_VERSION,
      outputSelection: { [SOLADY_ACCOUNT]: { SoladyAccount: ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] }, 'solady/accounts/ERC4337Factory.sol': { ERC4337Factory: ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] } },
    },
  };
  const soladySrc = join(dirname(require.resolve('solady/package.json')), 'src');
  // Solady's files import each other relatively: solc hands them back as `solady/<path under src>`.
  const readSoladyImport = (path: string) => {
    if (!path.startsWith('solady/')) return { error: `import outside solady: ${path}` };
    try {
      return { contents: readFileSync(join(soladySrc, path.slice('solady/'.length)), 'utf8') };
    } catch {
      return { error: `not found: ${path}` };
    }
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: readSoladyImport })) as {
    errors?: { severity: string; formattedMessage: string }[];
    contracts: Record<string, Record<string, { abi: Abi; evm: { bytecode: { object: string }; deployedBytecode: { object: string } } }>>;
  };
  const errors = (output.errors ?? []).filter((e) => e.severity === 'error');
  if (errors.length) throw new Error(`solc failed on Solady:\n${errors.map((e) => e.formattedMessage).join('\n')}`);
  const pick = (file: string, name: SoladyContractName): CompiledContract => {
    const c = output.contracts[file]?.[name];
    if (!c) throw new Error(`solc produced no ${name} in ${file}`);
    return { abi: c.abi, bytecode: `0x${c.evm.bytecode.object}`, deployedBytecode: `0x${c.evm.deployedBytecode.object}` };
  };
  return { SoladyAccount: pick(SOLADY_ACCOUNT, 'SoladyAccount'), ERC4337Factory: pick('solady/accounts/ERC4337Factory.sol', 'ERC4337Factory') };
}

/** Permit2 compiled, plus where its runtime code holds the two immutables its EIP-712 domain caches. */
export interface CompiledPermit2 extends CompiledContract {
  /** Byte offsets (into `deployedBytecode`) of the 32-byte slots solc fills at construction. */
  immutables: { cachedDomainSeparator: number[]; cachedChainId: number[] };
}

// Uniswap's Permit2, from the sources @uniswap/v4-periphery ships under lib/permit2 (MIT), with the settings of
// its foundry.toml: via-IR, optimizer runs 1,000,000, no metadata hash. Its files pin `pragma solidity 0.8.17`
// exactly while the repo's solc is newer, so that one pragma is relaxed to `^0.8.17` as the sources are read:
// the same Solidity, compiled by a newer compiler (the bytecode differs from mainnet's; the behaviour does not).
const PERMIT2_ROOT = 'lib/permit2/';
const PINNED_PRAGMA = /pragma solidity 0\.8\.17;/;
let permit2: CompiledPermit2 | undefined;

/** Permit2 (`lib/permit2/src/Permit2.sol` of @uniswap/v4-periphery), compiled once per source hash. */
export function compiledPermit2(): CompiledPermit2 {
  if (permit2) return permit2;
  const pkgDir = dirname(require.resolve('@uniswap/v4-periphery/package.json'));
  const peripheryVersion = (require('@uniswap/v4-periphery/package.json') as { version: string }).version;
  const solcVersion = (require('solc/package.json') as { version: string }).version;
  // Every file solc may import is read up front, so the cache key covers all of them.
  const sources: Record<string, string> = {};
  for (const dir of ['src', 'lib/solmate/src']) collectSolidity(join(pkgDir, PERMIT2_ROOT), dir, sources);
  permit2 = cached('permit2', { sources, solcVersion, peripheryVersion, EVM_VERSION }, () => compilePermit2(require('solc') as Solc, sources));
  return permit2;
}

function collectSolidity(root: string, dir: string, into: Record<string, string>): void {
  for (const entry of readdirSync(join(root, dir), { withFileTypes: true })) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory()) collectSolidity(root, path, into);
    else if (entry.name.endsWith('.sol')) into[path] = readFileSync(join(root, path), 'utf8').replace(PINNED_PRAGMA, 'pragma solidity ^0.8.17;');
  }
}

function compilePermit2(solc: Solc, sources: Record<string, string>): CompiledPermit2 {
  const input = {
    language: 'Solidity',
    sources: { 'src/Permit2.sol': { content: sources['src/Permit2.sol']! } },
    settings: {
      viaIR: true,
      optimizer: { enabled: true, runs: 1_000_000 },
      metadata: { bytecodeHash: 'none' },
      evmVersion: EVM_VERSION,
      outputSelection: {
        'src/Permit2.sol': { Permit2: ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object', 'evm.deployedBytecode.immutableReferences'] },
        'src/EIP712.sol': { '': ['ast'] },
      },
    },
  };
  // foundry.toml's remapping `solmate/=lib/solmate`; every other import is relative to src/.
  const readPermit2Import = (path: string) => {
    const content = sources[path.startsWith('solmate/') ? `lib/${path}` : path];
    return content === undefined ? { error: `not in Permit2's sources: ${path}` } : { contents: content };
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: readPermit2Import })) as {
    errors?: { severity: string; formattedMessage: string }[];
    sources: Record<string, { ast?: unknown }>;
    contracts: Record<string, Record<string, { abi: Abi; evm: { bytecode: { object: string }; deployedBytecode: { object: string; immutableReferences: Record<string, { start: number; length: number }[]> } } }>>;
  };
  const errors = (output.errors ?? []).filter((e) => e.severity === 'error');
  if (errors.length) throw new Error(`solc failed on Permit2:\n${errors.map((e) => e.formattedMessage).join('\n')}`);
  const c = output.contracts['src/Permit2.sol']?.Permit2;
  if (!c) throw new Error('solc produced no Permit2');
  // immutableReferences are keyed by AST id: EIP712.sol's AST names them.
  const ids = immutableIds(output.sources['src/EIP712.sol']?.ast);
  const offsets = (name: string) => {
    const refs = c.evm.deployedBytecode.immutableReferences[String(ids.get(name))];
    if (!refs?.length || refs.some((r) => r.length !== 32)) throw new Error(`Permit2's runtime code has no 32-byte slot for ${name}`);
    return refs.map((r) => r.start);
  };
  return {
    abi: c.abi,
    bytecode: `0x${c.evm.bytecode.object}`,
    deployedBytecode: `0x${c.evm.deployedBytecode.object}`,
    immutables: { cachedDomainSeparator: offsets('_CACHED_DOMAIN_SEPARATOR'), cachedChainId: offsets('_CACHED_CHAIN_ID') },
  };
}

/** name -> AST id of every immutable state variable in `ast`. */
function immutableIds(ast: unknown): Map<string, number> {
  const out = new Map<string, number>();
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) return node.forEach(walk);
    if (!node || typeof node !== 'object') return;
    const n = node as { nodeType?: string; mutability?: string; name?: string; id?: number };
    if (n.nodeType === 'VariableDeclaration' && n.mutability === 'immutable' && n.name && n.id !== undefined) out.set(n.name, n.id);
    Object.values(node).forEach(walk);
  };
  walk(ast);
  return out;
}
