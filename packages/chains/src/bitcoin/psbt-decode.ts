// bitcoin.psbt: an untrusted PSBT into an intent policy can judge, plus one signature task per input that is
// provably the agent's (psbt-ownership.ts says which). Every refusal names its code (psbt_* in core's codes);
// nothing is guessed. The order: parse, previous outputs, amounts, ownership, what signing needs, a rehearsal
// of the completed PSBT, then the intent and the tasks.
import { AirlockError, type BitcoinNetwork, type DecodedRequest, type SignerContext } from '@airlock/core';
import { bytesToHex } from '@noble/hashes/utils.js';
import type { TransactionInput, TransactionOutput } from '@scure/btc-signer/psbt.js';
import { BitcoinAccount } from './account.ts';
import { coinType, isOtherNetworkVersion, readNetwork } from './networks.ts';
import { decodePsbtBase64, parsePsbt } from './psbt-parse.ts';
import { bitcoinInfo, psbtIntent } from './psbt-intent.ts';
import { changePath, isFinal, ownInput, type Prevout } from './psbt-ownership.ts';
import { completePsbt, placeholderSignatures, type OwnInput, type PreparedPsbt } from './psbt-sign.ts';
import { isSighashSingle, segwitV0Sighash, taprootSighash } from './sighash.ts';
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
  // Change is the agent's only while every one of its signatures commits to it: under SIGHASH_NONE, or SINGLE at
  // another index, a co-signer can point that output elsewhere after the agent signed (an attack review moved
  // 89,000 sat of "change" to itself with 11,000 charged). Such an output is charged like any other.
  const changePaths = outputs.map((output, i) => (own.every((mine) => commitsToOutput(mine, i)) ? changePath(output, i, account, coin) : undefined));
  if (own.length === 0) throw new AirlockError('psbt_nothing_to_sign', "no input names one of the agent's keys with a script that derivation reproduces");
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

/** Whether the signature of an input of the agent covers output `index`: ALL (and taproot's DEFAULT) covers every output, SINGLE the one at its own index, NONE none. */
function commitsToOutput(mine: OwnInput, index: number): boolean {
  const base = mine.sighash & 0x1f;
  if (base === 0 || base === 1) return true;
  return isSighashSingle(mine.sighash) && mine.index === index;
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
