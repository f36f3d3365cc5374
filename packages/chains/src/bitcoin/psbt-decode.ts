// bitcoin.psbt: an untrusted PSBT into an intent policy can judge, plus one signature task per input that is
// provably the agent's (psbt-ownership.ts says which). Every refusal names its code (psbt_* in core's codes);
// nothing is guessed. The order: parse, the transaction's version, previous outputs, amounts, ownership, what the
// agent's signatures commit to (and so which previous outputs must be proven), what signing needs, a rehearsal
// of the completed PSBT, then the intent and the tasks.
import { AirlockError, type BitcoinNetwork, type DecodedRequest, type SignerContext } from '@airlock/core';
import { bytesToHex } from '@noble/hashes/utils.js';
import type { TransactionInput, TransactionOutput } from '@scure/btc-signer/psbt.js';
import { BitcoinAccount } from './account.ts';
import { coinType, isOtherNetworkVersion, readNetwork } from './networks.ts';
import { assertSignableVersion, decodePsbtBase64, parsePsbt } from './psbt-parse.ts';
import { bitcoinInfo, psbtIntent } from './psbt-intent.ts';
import { changePath, isFinal, ownInput, type Prevout } from './psbt-ownership.ts';
import { completePsbt, placeholderSignatures, type OwnInput, type PreparedPsbt } from './psbt-sign.ts';
import { commitsToOutput, isAnyoneCanPay, isSighashSingle, segwitV0Sighash, taprootSighash } from './sighash.ts';
import { taskCommitment, type CommittedTask } from './signatures.ts';

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

export function decodePsbtRequest(payload: unknown, signer: SignerContext): DecodedRequest {
  const request = readPsbtRequest(payload);
  const { network } = request;
  const account = BitcoinAccount.fromSigner(signer);
  const bytes = decodePsbtBase64(request.psbt);
  const { tx, version, globalXpubVersions } = parsePsbt(bytes);
  if (globalXpubVersions.some((v) => isOtherNetworkVersion(v, network))) {
    throw new AirlockError('psbt_network_mismatch', `the PSBT carries an extended key of another network than ${network}`);
  }
  assertSignableVersion(tx.version);
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
  // Change is the agent's only while every one of its signatures commits to it: under SIGHASH_NONE, or SINGLE at
  // another index, a co-signer can point that output elsewhere after the agent signed (an attack review moved
  // 89,000 sat of "change" to itself with 11,000 charged). Such an output is charged like any other. Under
  // ALL|ANYONECANPAY every signature commits to every output but to no other input, so signatures from several
  // requests, each counting the same change as returned, combine into one transaction that returns it once:
  // none of its outputs is counted as returned (SINGLE|ANYONECANPAY pairs each input with its own output).
  const changePaths = outputs.map((output, i) => (own.every((mine) => commitsToOutput(mine.sighash, mine.index, i) && !isAllAnyoneCanPay(mine.sighash)) ? changePath(output, i, account, coin) : undefined));
  if (own.length === 0) throw new AirlockError('psbt_nothing_to_sign', "no input names one of the agent's keys with a script that derivation reproduces");
  assertSpendsValue(own, prevouts);
  // A valid PSBT (BIP-174 has one as a test vector), but not a transaction consensus accepts: nothing to sign for.
  if (outputs.length === 0) throw new AirlockError('invalid_request', 'the transaction has no outputs');
  for (const mine of own) {
    if (isSighashSingle(mine.sighash) && mine.index >= outputs.length) {
      throw new AirlockError('psbt_sighash_single_without_output', `input ${mine.index} asks for SIGHASH_SINGLE but the transaction has no output ${mine.index}`);
    }
  }
  assertAmountsBound(inputs, own);
  const finalize = request.finalize === true;
  if (finalize) assertOthersFinal(inputs, own);

  const tasks: CommittedTask[] = own.map((mine) => ({
    input: mine.index,
    sighash: mine.sighash,
    path: mine.path,
    scheme: mine.type === 'p2wpkh' ? 'ecdsa-secp256k1' : 'taproot-key-path',
    digest: mine.type === 'p2wpkh' ? segwitV0Sighash(tx, mine.index, mine.publicKey, prevouts[mine.index]!.amount, mine.sighash) : taprootSighash(tx, mine.index, prevouts, mine.sighash),
  }));
  const prepared: PreparedPsbt = { kind: 'bitcoin.psbt', tx, bytes, version, finalize, inputs: own };
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

function isAllAnyoneCanPay(sighash: number): boolean {
  return isAnyoneCanPay(sighash) && (sighash & 0x1f) === 1;
}

/**
 * An input of the agent spending an output worth nothing moves no coins: BIP-322 proves a message with exactly
 * such a spend (of its virtual `to_spend`), so a signature on it is a message proof, not a payment.
 */
export function assertSpendsValue(own: readonly { index: number }[], prevouts: readonly Prevout[]): void {
  for (const mine of own) {
    if (prevouts[mine.index]!.amount === 0n) throw new AirlockError('psbt_zero_value_input', `input ${mine.index} is the agent's and spends an output worth 0 sat: that is a message proof (BIP-322), not a payment`);
  }
}

/**
 * Every amount bound: committed to by the agent's signatures, or proven. The fee is every input's amount minus
 * the outputs, so each must be the one the chain will hold the transaction to. A taproot signature (BIP-341)
 * without ANYONECANPAY commits to every input's amount and script: a witness UTXO that lies makes it invalid. A
 * P2WPKH signature (BIP-143) commits to its own amount only, and ANYONECANPAY (BIP-143 and BIP-341) to its own
 * input only. With such a signature, an input presented as someone else's (no derivation fields) can be another
 * coin of the agent, understated, signed in another request that understates this one: the two signatures make
 * one valid transaction burning both coins into a fee charged 0 (an attack review burnt 100,000 sat past a
 * 1,000 sat fee cap). So then every input must carry its full previous transaction, which parse checked against
 * its outpoint. (Bitcoin Core's wallet keeps them for the same reason: it drops them only when every input is
 * taproot and no signature is ANYONECANPAY.) Under ANYONECANPAY an input can also be left out altogether; the
 * change rule above covers that.
 */
export function assertAmountsBound(inputs: readonly TransactionInput[], own: readonly OwnInput[]): void {
  const uncommitted = own.find((mine) => mine.type === 'p2wpkh' || isAnyoneCanPay(mine.sighash));
  if (!uncommitted) return;
  const missing = inputs.findIndex((input) => !input.nonWitnessUtxo);
  if (missing >= 0) {
    const why = uncommitted.type === 'p2wpkh' ? `the agent's segwit v0 input ${uncommitted.index}` : `the ANYONECANPAY signature of input ${uncommitted.index}`;
    throw new AirlockError('psbt_previous_tx_required', `input ${missing} has no full previous transaction, and ${why} does not commit to every input's amount: each must be proven`);
  }
}

/** Consensus refuses a transaction spending one output twice; its amount would also count twice in the fee. */
export function assertDistinctOutpoints(inputs: readonly TransactionInput[]): void {
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
export function previousOutput(input: TransactionInput, i: number): Prevout {
  if (input.nonWitnessUtxo && input.index !== undefined) {
    const spent = input.nonWitnessUtxo.outputs[input.index];
    if (spent) return spent;
  }
  if (input.witnessUtxo) return input.witnessUtxo;
  throw new AirlockError('psbt_missing_utxo', `input ${i} has neither a witness UTXO nor its previous transaction: its amount is unknown`);
}

/** Every amount and both sums within 21 million bitcoin, outputs not above inputs. Returns the fee (sat). */
export function checkAmounts(prevouts: readonly Prevout[], outputs: readonly TransactionOutput[]): bigint {
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

/** Completes the PSBT with placeholder signatures: whatever would fail after signing fails now, before it. */
function rehearse(prepared: PreparedPsbt): void {
  try {
    completePsbt(prepared, placeholderSignatures(prepared.inputs));
  } catch (e) {
    throw new AirlockError('psbt_malformed', prepared.finalize ? 'the PSBT cannot be finalized' : 'the PSBT cannot take the signatures', { cause: e });
  }
}
