// bitcoin.psbt: an untrusted PSBT into an intent policy can judge, plus one signature task per input that is
// provably the agent's. Every refusal names its code (psbt_* in core's codes); nothing is guessed.
//
// An input is the agent's only when its BIP-32 derivation (P2WPKH) or taproot derivation (P2TR key path) names
// the vault's master fingerprint and a path m/<84|86>'/<coin>'/<account>'/<0|1>/<i> of THIS agent's account,
// and deriving that path from the account key gives the key listed and the very script the input spends.
// An output is change only when its derivation names the agent's change branch (…/1/i) and derivation
// reproduces its script; every other output, whatever it claims or resembles, is money leaving.
import {
  AirlockError,
  BITCOIN_CHAINS,
  bitcoinAsset,
  type BitcoinInfo,
  type BitcoinInput,
  type BitcoinNetwork,
  type BitcoinOutput,
  type DecodedRequest,
  type Intent,
  type SighashName,
  type SignerContext,
  type Spend,
} from '@airlock/core';
import { sha256 } from '@noble/hashes/sha2.js';
import { equalBytes } from '@noble/curves/utils.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { OutScript, type Transaction } from '@scure/btc-signer';
import type { TransactionInput, TransactionOutput } from '@scure/btc-signer/psbt.js';
import { addressOf, BitcoinAccount, formatPath, HARDENED, scriptOf } from './account.ts';
import { coinType, isOtherNetworkVersion, readNetwork } from './networks.ts';
import { decodePsbtBase64, parsePsbt } from './psbt-parse.ts';
import { completePsbt, placeholderSignatures, type OwnInput, type PreparedPsbt } from './psbt-sign.ts';
import { isSighashSingle, segwitV0Sighash, SIGHASH_ALL, SIGHASH_DEFAULT, sighashName, taprootSighash } from './sighash.ts';
import { taskCommitment, type CommittedTask } from './signatures.ts';
import { otherInputSize, ownInputSize, virtualSize } from './vsize.ts';

/** What `bitcoin.psbt` decodes (the route checked the shape; decode checks it again). */
export interface PsbtRequest {
  /** BIP-174 (v0) or BIP-370 (v2) PSBT, base64. */
  psbt: string;
  network: BitcoinNetwork;
  /** Finalize every input and extract the transaction (every input that is not the agent's must already be final). */
  finalize?: boolean;
}

/** 21 million bitcoin in satoshis: no amount, and no sum of amounts, can be more. */
const MAX_MONEY = 2_100_000_000_000_000n;
const PSBT_DOMAIN = 'airlock/bitcoin.psbt/v1';

type Prevout = { script: Uint8Array; amount: bigint };

export function decodePsbtRequest(payload: unknown, signer: SignerContext): DecodedRequest {
  const request = readPsbtRequest(payload);
  const { network } = request;
  const account = BitcoinAccount.fromSigner(signer);
  const { tx, version, globalXpubVersions } = parsePsbt(decodePsbtBase64(request.psbt));
  if (globalXpubVersions.some((v) => isOtherNetworkVersion(v, network))) {
    throw new AirlockError('psbt_network_mismatch', `the PSBT carries an extended key of another network than ${network}`);
  }
  const coin = coinType(network);
  const inputs = Array.from({ length: tx.inputsLength }, (_, i) => tx.getInput(i));
  const outputs = Array.from({ length: tx.outputsLength }, (_, i) => tx.getOutput(i));
  assertDistinctOutpoints(inputs);
  const prevouts = inputs.map(previousOutput);
  const feeSat = checkAmounts(prevouts, outputs);

  const own: OwnInput[] = [];
  inputs.forEach((input, i) => {
    const mine = ownInput(input, prevouts[i]!, i, account, coin);
    if (mine) own.push(mine);
  });
  const changePaths = outputs.map((output, i) => changePath(output, i, account, coin));
  if (own.length === 0) throw new AirlockError('psbt_nothing_to_sign', "no input names one of the agent's keys with a script derivation reproduces");
  // A valid PSBT (BIP-174 has one as a test vector), but not a transaction consensus accepts: nothing to sign for.
  if (outputs.length === 0) throw new AirlockError('invalid_request', 'the transaction has no outputs');
  for (const mine of own) {
    if (isSighashSingle(mine.sighash) && mine.index >= outputs.length) {
      throw new AirlockError('psbt_sighash_single_without_output', `input ${mine.index} asks for SIGHASH_SINGLE but the transaction has no output ${mine.index}`);
    }
  }
  const finalize = request.finalize === true;
  if (finalize) assertOthersFinal(inputs, own);

  const tasks: CommittedTask[] = own.map((mine) => ({
    input: mine.index,
    sighash: mine.sighash,
    path: mine.path,
    scheme: mine.type === 'p2wpkh' ? 'ecdsa-secp256k1' : 'taproot-key-path',
    digest: mine.type === 'p2wpkh' ? segwitV0Sighash(tx, mine.index, mine.publicKey, prevouts[mine.index]!.amount, mine.sighash) : taprootSighash(tx, mine.index, prevouts, mine.sighash),
  }));
  const prepared: PreparedPsbt = { kind: 'bitcoin.psbt', tx, version, finalize, inputs: own };
  rehearse(prepared);

  const info = bitcoinInfo(tx, version, network, inputs, prevouts, outputs, own, changePaths, feeSat);
  const firstPurpose = own[0]!.type === 'p2wpkh' ? 84 : 86;
  const intent = psbtIntent(info, account.keyOrigin(firstPurpose, coin));
  return {
    intent,
    digest: taskCommitment(PSBT_DOMAIN, tx.unsignedTx, tasks),
    tasks: tasks.map(({ path, digest, scheme }) => ({ path, digest, scheme })),
    prepared,
  };
}

/** Consensus refuses a transaction spending one output twice; its amount would also count twice in the fee. */
function assertDistinctOutpoints(inputs: readonly TransactionInput[]): void {
  const spent = new Set<string>();
  inputs.forEach((input, i) => {
    const outpoint = `${bytesToHex(input.txid!)}:${input.index}`;
    if (spent.has(outpoint)) throw new AirlockError('psbt_malformed', `input ${i} spends the same output as an earlier input`);
    spent.add(outpoint);
  });
}

/** Finalizing needs every other signer's input final already: we can only complete the agent's own. */
function assertOthersFinal(inputs: readonly TransactionInput[], own: readonly OwnInput[]): void {
  const ownIndexes = new Set(own.map((o) => o.index));
  const open = inputs.findIndex((input, i) => !ownIndexes.has(i) && !isFinal(input));
  if (open >= 0) throw new AirlockError('invalid_request', `finalize: input ${open} is not the agent's and not final; it cannot be finalized here`);
}

function readPsbtRequest(payload: unknown): PsbtRequest {
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) throw new AirlockError('invalid_request', 'a bitcoin.psbt request is an object');
  const { psbt, network, finalize } = payload as Record<string, unknown>;
  if (typeof psbt !== 'string') throw new AirlockError('invalid_request', 'psbt: a base64 PSBT is required');
  if (finalize !== undefined && typeof finalize !== 'boolean') throw new AirlockError('invalid_request', 'finalize must be a boolean');
  return { psbt, network: readNetwork(network), ...(finalize !== undefined ? { finalize } : {}) };
}

/** The output an input spends: from its full previous transaction when given (checked at parse), else its witness UTXO. */
function previousOutput(input: TransactionInput, i: number): Prevout {
  if (input.nonWitnessUtxo && input.index !== undefined) {
    const spent = input.nonWitnessUtxo.outputs[input.index];
    if (spent) return spent;
  }
  if (input.witnessUtxo) return input.witnessUtxo;
  throw new AirlockError('psbt_missing_utxo', `input ${i} has neither a witness UTXO nor its previous transaction: its amount is unknown`);
}

/** Every amount and both sums within 21 million bitcoin, outputs not above inputs. Returns the fee (sat). */
function checkAmounts(prevouts: readonly Prevout[], outputs: readonly TransactionOutput[]): bigint {
  let totalIn = 0n;
  let totalOut = 0n;
  for (const p of prevouts) {
    if (p.amount < 0n || p.amount > MAX_MONEY) throw new AirlockError('psbt_value_out_of_range', 'an input amount is beyond 21 million bitcoin');
    totalIn += p.amount;
  }
  for (const o of outputs) {
    if (o.amount === undefined || o.amount < 0n || o.amount > MAX_MONEY) throw new AirlockError('psbt_value_out_of_range', 'an output amount is beyond 21 million bitcoin');
    totalOut += o.amount;
  }
  if (totalIn > MAX_MONEY || totalOut > MAX_MONEY) throw new AirlockError('psbt_value_out_of_range', 'the amounts add up to more than 21 million bitcoin');
  if (totalOut > totalIn) throw new AirlockError('psbt_value_out_of_range', `the outputs (${totalOut} sat) exceed the inputs (${totalIn} sat)`);
  return totalIn - totalOut;
}

/** A derivation claim from a PSBT input or output: the key as listed and where it says the key comes from. */
interface Claim {
  kind: 'p2wpkh' | 'p2tr';
  key: Uint8Array;
  fingerprint: number;
  path: readonly number[];
  /** Taproot: the leaves the key is used in (none for a key-path key). */
  leafHashes: readonly Uint8Array[];
}

function claimsOf(field: Pick<TransactionInput, 'bip32Derivation' | 'tapBip32Derivation'>): Claim[] {
  const claims: Claim[] = [];
  for (const [key, der] of field.bip32Derivation ?? []) claims.push({ kind: 'p2wpkh', key, fingerprint: der.fingerprint, path: der.path, leafHashes: [] });
  for (const [key, { hashes, der }] of field.tapBip32Derivation ?? []) claims.push({ kind: 'p2tr', key, fingerprint: der.fingerprint, path: der.path, leafHashes: hashes });
  return claims;
}

/**
 * Where a claim with the vault's fingerprint points. `other-account`: another agent's (or no agent's) key,
 * never signed. A BIP-84/86 path with the other network's coin type is a PSBT for another network.
 */
function place(claim: Claim, account: BitcoinAccount, coin: 0 | 1, what: string): { change: 0 | 1; index: number; purpose: 84 | 86 } | 'other-account' {
  const [purpose, coinIndex, accountIndex, change, index] = claim.path;
  const expectedPurpose = claim.kind === 'p2wpkh' ? 84 + HARDENED : 86 + HARDENED;
  if ((purpose === 84 + HARDENED || purpose === 86 + HARDENED) && (coinIndex === HARDENED || coinIndex === 1 + HARDENED) && coinIndex !== coin + HARDENED) {
    throw new AirlockError('psbt_network_mismatch', `${what} names a key of the vault on another network (coin type ${coinIndex! - HARDENED})`);
  }
  if (purpose !== expectedPurpose || coinIndex !== coin + HARDENED || accountIndex !== account.account + HARDENED) return 'other-account';
  if (claim.path.length !== 5 || (change !== 0 && change !== 1) || index === undefined || index >= HARDENED) return 'other-account';
  return { change, index, purpose: purpose === 84 + HARDENED ? 84 : 86 };
}

/**
 * The input as the agent's (its key and script proven by derivation), or undefined when no claim names this
 * agent's account. A claim on this account that derivation does not bear out is refused, never skipped.
 */
function ownInput(input: TransactionInput, prevout: Prevout, i: number, account: BitcoinAccount, coin: 0 | 1): OwnInput | undefined {
  let mine: OwnInput | undefined;
  for (const claim of claimsOf(input)) {
    if (claim.fingerprint !== account.fingerprint) continue;
    const at = place(claim, account, coin, `input ${i}`);
    if (at === 'other-account') continue;
    if (claim.leafHashes.length > 0) throw new AirlockError('psbt_unsupported_input', `input ${i}: the agent's key is named in a taproot script path, which Airlock does not sign`);
    const publicKey = account.publicKey(at.purpose, coin, at.change, at.index);
    const listed = claim.kind === 'p2wpkh' ? publicKey : publicKey.slice(1);
    if (!equalBytes(listed, claim.key)) throw new AirlockError('psbt_input_mismatch', `input ${i}: the key its derivation lists is not the one its path derives`);
    if (!equalBytes(scriptOf(claim.kind, publicKey), prevout.script)) {
      if (isWrappedOrScripted(input, prevout.script)) throw new AirlockError('psbt_unsupported_input', `input ${i}: the agent's key in a script Airlock does not sign (only P2WPKH and P2TR key path)`);
      throw new AirlockError('psbt_input_mismatch', `input ${i}: the script it spends is not the one the agent's key derives`);
    }
    if (mine) throw new AirlockError('psbt_input_mismatch', `input ${i} names the agent's keys twice`);
    const path = formatPath([...account.accountIndexes(at.purpose, coin), at.change, at.index]);
    mine = { index: i, type: claim.kind, path, publicKey, sighash: sighashOf(input, claim.kind, i), ...(claim.kind === 'p2tr' ? { outputKey: prevout.script.slice(2) } : {}) };
  }
  if (!mine) return undefined;
  if (isFinal(input)) throw new AirlockError('invalid_request', `input ${i} is the agent's and already final: there is nothing to sign`);
  // BIP-143 commits to this input's amount only: a witness UTXO whose amount lies would go unnoticed by the
  // signature and could hide a fee. The full previous transaction (checked against the txid) proves the amount.
  if (mine.type === 'p2wpkh' && !input.nonWitnessUtxo) {
    throw new AirlockError('psbt_missing_utxo', `input ${i} is the agent's segwit v0 input: its full previous transaction is required (BIP-143 does not commit to other amounts)`);
  }
  return mine;
}

/** The agent's key inside P2SH, P2WSH, bare or legacy scripts, or a taproot output with a script tree. */
function isWrappedOrScripted(input: TransactionInput, script: Uint8Array): boolean {
  if (input.redeemScript || input.witnessScript || input.tapMerkleRoot || input.tapLeafScript?.length) return true;
  try {
    return ['sh', 'wsh', 'pkh', 'pk', 'ms'].includes(OutScript.decode(script).type);
  } catch {
    return false;
  }
}

/** The input's sighash type: ALL for P2WPKH and DEFAULT for P2TR unless it says otherwise; unknown values refused. */
function sighashOf(input: TransactionInput, type: 'p2wpkh' | 'p2tr', i: number): number {
  const value = input.sighashType ?? (type === 'p2wpkh' ? SIGHASH_ALL : SIGHASH_DEFAULT);
  if (sighashName(value) === undefined || (type === 'p2wpkh' && value === SIGHASH_DEFAULT)) {
    throw new AirlockError('psbt_malformed', `input ${i} asks for a sighash type that is not defined for its script`);
  }
  return value;
}

function isFinal(input: TransactionInput): boolean {
  return (input.finalScriptSig?.length ?? 0) > 0 || (input.finalScriptWitness?.length ?? 0) > 0;
}

/** The agent's change path of an output, when its derivation names the change branch and reproduces its script. */
function changePath(output: TransactionOutput, i: number, account: BitcoinAccount, coin: 0 | 1): string | undefined {
  let path: string | undefined;
  for (const claim of claimsOf(output)) {
    if (claim.fingerprint !== account.fingerprint) continue;
    const at = place(claim, account, coin, `output ${i}`);
    if (at === 'other-account' || at.change !== 1 || claim.leafHashes.length > 0) continue;
    const publicKey = account.publicKey(at.purpose, coin, 1, at.index);
    const listed = claim.kind === 'p2wpkh' ? publicKey : publicKey.slice(1);
    if (equalBytes(listed, claim.key) && output.script && equalBytes(scriptOf(claim.kind, publicKey), output.script)) {
      path = formatPath([...account.accountIndexes(at.purpose, coin), 1, at.index]);
    }
  }
  return path;
}

/** Completes the PSBT with placeholder signatures: whatever would fail after signing fails now, before it. */
function rehearse(prepared: PreparedPsbt): void {
  try {
    completePsbt(prepared, placeholderSignatures(prepared.inputs));
  } catch (e) {
    throw new AirlockError('psbt_malformed', prepared.finalize ? 'the PSBT cannot be finalized' : 'the PSBT cannot take the signatures', { cause: e });
  }
}

function scriptTypeOf(script: Uint8Array): string {
  try {
    const type = OutScript.decode(script).type;
    const names: Record<string, string> = { wpkh: 'p2wpkh', tr: 'p2tr', pkh: 'p2pkh', sh: 'p2sh', wsh: 'p2wsh', pk: 'p2pk', ms: 'multisig', p2a: 'p2a' };
    return names[type] ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

function bitcoinInfo(
  tx: Transaction,
  version: 0 | 2,
  network: BitcoinNetwork,
  inputs: readonly TransactionInput[],
  prevouts: readonly Prevout[],
  outputs: readonly TransactionOutput[],
  own: readonly OwnInput[],
  changePaths: readonly (string | undefined)[],
  feeSat: bigint,
): BitcoinInfo {
  const ownByIndex = new Map(own.map((o) => [o.index, o]));
  const infoInputs: BitcoinInput[] = inputs.map((input, i) => {
    const mine = ownByIndex.get(i);
    const prevout = prevouts[i]!;
    const address = addressOf(prevout.script, network);
    return {
      index: i,
      txid: bytesToHex(input.txid!),
      vout: input.index!,
      amountSat: prevout.amount,
      ...(address !== undefined ? { address } : {}),
      scriptType: mine ? mine.type : scriptTypeOf(prevout.script),
      ours: mine !== undefined,
      ...(mine ? { path: mine.path, sighash: sighashName(mine.sighash)! } : {}),
      sequence: input.sequence ?? 0xffffffff,
    };
  });
  const infoOutputs: BitcoinOutput[] = outputs.map((output, i) => {
    const address = addressOf(output.script!, network);
    const path = changePaths[i];
    return {
      index: i,
      amountSat: output.amount!,
      ...(address !== undefined ? { address } : {}),
      script: bytesToHex(output.script!),
      change: path !== undefined,
      ...(path !== undefined ? { path } : {}),
    };
  });
  const vsize = virtualSize(
    inputs.map((input, i) => {
      const mine = ownByIndex.get(i);
      return mine ? ownInputSize(mine.type, mine.sighash) : otherInputSize(input, prevouts[i]!.script);
    }),
    outputs.map((o) => o.script!),
  );
  const sighashes: SighashName[] = [];
  for (const mine of own) {
    const name = sighashName(mine.sighash)!;
    if (!sighashes.includes(name)) sighashes.push(name);
  }
  return {
    network,
    psbtVersion: version,
    txid: bytesToHex(sha256(sha256(tx.unsignedTx)).reverse()),
    inputs: infoInputs,
    outputs: infoOutputs,
    feeSat,
    vsize,
    // Rounded up: a rule capping the rate must never see less than the true figure.
    feeRate: Number((feeSat * 1000n + BigInt(vsize) - 1n) / BigInt(vsize)) / 1000,
    locktime: tx.lockTime,
    rbf: infoInputs.some((i) => i.sequence < 0xfffffffe),
    sighashes,
  };
}

function psbtIntent(info: BitcoinInfo, from: string): Intent {
  const chain = BITCOIN_CHAINS[info.network];
  const asset = bitcoinAsset(chain);
  const external = info.outputs.filter((o) => !o.change);
  // What the agent can lose is its inputs minus its change. The spends (every non-change output plus the fee)
  // are that plus the other signers' inputs, so never less: the agent's own amounts are proven (full previous
  // transaction for P2WPKH; for P2TR the signature commits to every amount and is worthless if one lies), and
  // another signer's claimed amount only adds. On-chain amounts are charged in millisatoshis (sat x 1000): one
  // budget covers Lightning and on-chain.
  const spends: Spend[] = external.map((o) => ({ asset, amount: o.amountSat * 1000n, decimals: 11, to: o.address ?? `script:${o.script}`, kind: 'transfer' }));
  spends.push({ asset, amount: info.feeSat * 1000n, decimals: 11, kind: 'fee' });
  const destinations = [...new Set(spends.flatMap((s) => (s.to === undefined ? [] : [s.to])))];
  return {
    action: 'bitcoin.psbt',
    chain,
    kind: 'bitcoin.transaction',
    from,
    ...(destinations.length === 1 ? { to: destinations[0]! } : {}),
    spends,
    approvals: [],
    bitcoin: info,
    summary: psbtSummary(info, destinations, external.reduce((sum, o) => sum + o.amountSat, 0n)),
  };
}

/** "send 0.0005 BTC to tb1qxy2kgd…9wlhx0 and 1 more, fee 1410 sat (10.000 sat/vB) on regtest" */
function psbtSummary(info: BitcoinInfo, destinations: readonly string[], sentSat: bigint): string {
  const fee = `fee ${info.feeSat} sat (${info.feeRate.toFixed(3)} sat/vB) on ${info.network}`;
  if (destinations.length === 0) return `move ${formatBtc(info.outputs.reduce((s, o) => s + o.amountSat, 0n))} BTC to the agent's own change, ${fee}`;
  const more = destinations.length > 1 ? ` and ${destinations.length - 1} more` : '';
  return `send ${formatBtc(sentSat)} BTC to ${shorten(destinations[0]!)}${more}, ${fee}`;
}

export function formatBtc(sat: bigint): string {
  const whole = sat / 100_000_000n;
  const fraction = (sat % 100_000_000n).toString().padStart(8, '0').replace(/0+$/, '');
  return fraction ? `${whole}.${fraction}` : `${whole}`;
}

function shorten(destination: string): string {
  return destination.length > 24 ? `${destination.slice(0, 12)}…${destination.slice(-6)}` : destination;
}
