// Test helpers (under testing/: never packed or exported): a vault with an HD key backend, the signer context the signing
// service builds for an agent, the service's signing loop over a request's tasks, and a PSBT builder with
// previous transactions funding the agent's (and strangers') scripts.
import type { Action, BitcoinNetwork, DecodedRequest, ProducedSignature, SignerContext, SignResult } from '@airlock/core';
import { HdKeyBackend } from '@airlock/keys';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { hexToBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import { base64 } from '@scure/base';
import { HDKey } from '@scure/bip32';
import { p2wpkh, RawTx, Transaction } from '@scure/btc-signer';
import { bitcoinAccountPaths, HARDENED, scriptOf, type BitcoinAddressType } from '../account.ts';
import { createBitcoinAdapter } from '../adapter.ts';
import { coinType } from '../networks.ts';
import { txidOf } from '../psbt-parse.ts';

export const TEST_SEED = hexToBytes('5eb00bbddcf069084889a8ab9155568165f5c453ccb85e70811aaed6f6da5fc19a5ac40b389cd370d086206dec8aa6c43daea6690f20ad3d8d48b2d2ce9e38e4');

export interface TestVault {
  root: HDKey;
  backend: HdKeyBackend;
  signer: SignerContext;
  account: number;
  fingerprint: number;
}

/** The signer context exactly as SigningService.accountSigner builds it (account keys and master fingerprint from the backend). */
export async function openTestVault(account = 3, seed: Uint8Array = TEST_SEED): Promise<TestVault> {
  const root = HDKey.fromMasterSeed(seed);
  const backend = new HdKeyBackend(root);
  const paths = bitcoinAccountPaths(account);
  const extendedKeys: Record<string, Awaited<ReturnType<HdKeyBackend['getExtendedPublicKey']>>> = {};
  for (const path of paths) extendedKeys[path] = await backend.getExtendedPublicKey(path);
  const adapter = createBitcoinAdapter();
  const signer: SignerContext = { address: adapter.addressFromPublicKey(extendedKeys[paths[0]!]!.publicKey), extendedKeys, masterFingerprint: root.fingerprint };
  return { root, backend, signer, account, fingerprint: root.fingerprint };
}

/** The service's loop: one signature per task from the key backend, then finalize with all of them. */
export async function produceSignatures(backend: HdKeyBackend, decoded: DecodedRequest): Promise<ProducedSignature[]> {
  const out: ProducedSignature[] = [];
  for (const task of decoded.tasks ?? []) {
    if (task.scheme === 'taproot-key-path') out.push({ schnorr: await backend.signTaprootKeyPath(task.path, task.digest) });
    else out.push(await backend.signDigest(task.path, task.digest, 'ecdsa-secp256k1'));
  }
  return out;
}

export async function signRequest(vault: TestVault, action: Action, payload: unknown): Promise<{ decoded: DecodedRequest; result: SignResult }> {
  const adapter = createBitcoinAdapter();
  const decoded = adapter.decode(action, payload, vault.signer);
  const signatures = await produceSignatures(vault.backend, decoded);
  return { decoded, result: adapter.finalize(action, decoded, signatures[0]!, vault.signer, signatures) };
}

/** A key of the vault at m/<84|86>'/<coin>'/<account>'/<change>/<index> with its script (private side from the root, for tests only). */
export function vaultKey(vault: TestVault, type: BitcoinAddressType, network: BitcoinNetwork, change: number, index: number, account = vault.account, coin: number = coinType(network)) {
  const path = [(type === 'p2wpkh' ? 84 : 86) + HARDENED, coin + HARDENED, account + HARDENED, change, index];
  let node = vault.root;
  for (const i of path) node = node.deriveChild(i);
  const publicKey = node.publicKey!;
  return { path, publicKey, xOnly: publicKey.slice(1), script: scriptOf(type, publicKey) };
}

/** A stranger's P2WPKH key (deterministic from a label). */
export function strangerScript(label: string): Uint8Array {
  const privateKey = sha256(utf8ToBytes(`stranger/${label}`));
  return p2wpkh(secp256k1.getPublicKey(privateKey, true)).script;
}

let fundingCounter = 0;

/** A previous transaction paying `outputs` (its one input spends a made-up outpoint): what non-witness UTXOs carry. */
export function fundingTransaction(outputs: readonly { script: Uint8Array; amount: bigint }[]): { raw: Uint8Array; txid: string } {
  fundingCounter += 1;
  const tx = {
    version: 2,
    segwitFlag: false,
    inputs: [{ txid: sha256(utf8ToBytes(`funding/${fundingCounter}`)), index: 0, finalScriptSig: Uint8Array.of(0x51), sequence: 0xffffffff }],
    outputs: outputs.map((o) => ({ amount: o.amount, script: o.script })),
    witnesses: undefined,
    lockTime: 0,
  };
  const raw = RawTx.encode(tx);
  return { raw, txid: txidOf(RawTx.decode(raw)) };
}

export interface OwnInputOptions {
  change?: number;
  index?: number;
  amount: bigint;
  /**
   * Attach the full previous transaction (default: for P2WPKH only). Bitcoin Core keeps it for every input unless
   * all are taproot and none is ANYONECANPAY: set it on a P2TR input beside a P2WPKH one.
   */
  nonWitness?: boolean;
  witnessUtxo?: boolean;
  sighashType?: number;
  sequence?: number;
  /** Override what the derivation claims (to build lying PSBTs). */
  claimPath?: number[];
  claimKey?: Uint8Array;
  /** Spend this script instead of the derived one. */
  script?: Uint8Array;
  account?: number;
}

/** Builds PSBTs the way a wallet would, with btc-signer. */
export class PsbtBuilder {
  readonly tx: Transaction;
  readonly vault: TestVault;
  readonly network: BitcoinNetwork;

  constructor(vault: TestVault, network: BitcoinNetwork = 'regtest', psbtVersion: 0 | 2 = 0, lockTime = 0) {
    this.vault = vault;
    this.network = network;
    this.tx = new Transaction({ PSBTVersion: psbtVersion, lockTime, allowUnknownOutputs: true });
  }

  addOwnInput(type: BitcoinAddressType, o: OwnInputOptions): number {
    const key = vaultKey(this.vault, type, this.network, o.change ?? 0, o.index ?? 0, o.account ?? this.vault.account);
    const script = o.script ?? key.script;
    const funding = fundingTransaction([{ script: strangerScript('dust'), amount: 1000n }, { script, amount: o.amount }]);
    const path = o.claimPath ?? key.path;
    const fingerprint = this.vault.fingerprint;
    const nonWitness = o.nonWitness ?? type === 'p2wpkh';
    return this.tx.addInput({
      txid: funding.txid,
      index: 1,
      ...(o.sequence !== undefined ? { sequence: o.sequence } : {}),
      ...(nonWitness ? { nonWitnessUtxo: funding.raw } : {}),
      ...(o.witnessUtxo !== false ? { witnessUtxo: { script, amount: o.amount } } : {}),
      ...(o.sighashType !== undefined ? { sighashType: o.sighashType } : {}),
      ...(type === 'p2wpkh'
        ? { bip32Derivation: [[o.claimKey ?? key.publicKey, { fingerprint, path }]] }
        : { tapBip32Derivation: [[o.claimKey ?? key.xOnly, { hashes: [], der: { fingerprint, path } }]], ...(o.script ? {} : { tapInternalKey: key.xOnly }) }),
    });
  }

  /**
   * Someone else's P2WPKH input with its witness UTXO and its full previous transaction (what a coordinator
   * following BIP-174 includes for segwit v0), optionally already final with a made-up witness.
   */
  addStrangerInput(amount: bigint, final = false, label = 'input', o: { withoutPreviousTransaction?: boolean } = {}): number {
    const script = strangerScript(label);
    const funding = fundingTransaction([{ script, amount }]);
    return this.tx.addInput({
      txid: funding.txid,
      index: 0,
      witnessUtxo: { script, amount },
      ...(o.withoutPreviousTransaction ? {} : { nonWitnessUtxo: funding.raw }),
      ...(final ? { finalScriptWitness: [new Uint8Array(71).fill(1), new Uint8Array(33).fill(2)] } : {}),
    }, true);
  }

  pay(script: Uint8Array, amount: bigint): number {
    // A coordinator adds outputs after a stranger finalized a (made-up) input: btc-signer's signed-input guard is skipped.
    return this.tx.addOutput({ script, amount }, true);
  }

  /** An output with a derivation claim of the vault (change unless the claim or the script say otherwise). */
  addClaimedOutput(type: BitcoinAddressType, amount: bigint, o: { change?: number; index?: number; account?: number; coin?: number; script?: Uint8Array; claimKey?: Uint8Array } = {}): number {
    const key = vaultKey(this.vault, type, this.network, o.change ?? 1, o.index ?? 0, o.account ?? this.vault.account, o.coin);
    const fingerprint = this.vault.fingerprint;
    return this.tx.addOutput({
      script: o.script ?? key.script,
      amount,
      ...(type === 'p2wpkh'
        ? { bip32Derivation: [[o.claimKey ?? key.publicKey, { fingerprint, path: key.path }]] }
        : { tapBip32Derivation: [[o.claimKey ?? key.xOnly, { hashes: [], der: { fingerprint, path: key.path } }]] }),
    });
  }

  base64(): string {
    return base64.encode(this.tx.toPSBT());
  }
}
