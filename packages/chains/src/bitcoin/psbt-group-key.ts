// bitcoin.taproot_key_path: a PSBT spending outputs locked to ONE x-only Taproot output key that Airlock does not
// derive (the threshold cluster's FROST group key), read by whoever must decide on it: each signer node, and the
// coordinator that assembles the result. Nothing comes from the request but the PSBT and the network:
//
//  - the inputs signed are those whose previous output is exactly `OP_1 <group key>` (the group key from the
//    TR suite is already the BIP-341 OUTPUT key, tweaked for an empty script tree at key generation, so the
//    script pays to it as is and the key-path signature verifies against it: no tweak is applied here);
//  - each such input's message is its BIP-341 key-path sighash, computed here from the PSBT (SIGHASH_DEFAULT
//    only: any other type, explicit or not, is refused), never a digest someone hands over;
//  - every input must name its previous output (witness UTXO, or the full previous transaction, checked against
//    its txid at parse): BIP-341 commits to every input's amount and script (DEFAULT is never ANYONECANPAY, so
//    no previous transaction is needed), and the fee is priced from them;
//  - a transaction version outside 1..3 or a group-key input worth 0 sat is refused: that is BIP-322's virtual
//    `to_sign`, a message proof rather than a payment;
//  - outputs paying `OP_1 <group key>` are change; every other output is spent (with the fee) and policy sees
//    it as a `bitcoin.psbt` intent, so `to`, `destinations`, `bitcoin`, `max_amount` and `budget` rules apply.
import { AirlockError, type BitcoinNetwork, type Intent } from '@airlock/core';
import { equalBytes } from '@noble/curves/utils.js';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { OutScript } from '@scure/btc-signer';
import { addressOf } from './account.ts';
import { readNetwork } from './networks.ts';
import { assertSignableVersion, decodePsbtBase64, parsePsbt } from './psbt-parse.ts';
import { bitcoinInfo, psbtIntent } from './psbt-intent.ts';
import { assertDistinctOutpoints, assertSpendsValue, checkAmounts, previousOutput } from './psbt-decode.ts';
import { isFinal } from './psbt-ownership.ts';
import { completePsbt, placeholderSignatures, type OwnInput, type PreparedPsbt } from './psbt-sign.ts';
import { SIGHASH_DEFAULT, taprootSighash } from './sighash.ts';
import { checkedTaprootSignature, taskCommitment } from './signatures.ts';

export const TAPROOT_KEY_PATH_ACTION = 'bitcoin.taproot_key_path';
const DOMAIN = 'airlock/bitcoin.taproot_key_path/v1';

export interface TaprootKeyPathRequest {
  action: typeof TAPROOT_KEY_PATH_ACTION;
  /** BIP-174 (v0) or BIP-370 (v2) PSBT, base64. */
  psbt: string;
  network: BitcoinNetwork;
  /** Finalize the signed inputs and extract the transaction (every other input must be final already). */
  finalize?: boolean;
}

/** One input the group key signs: its index and the BIP-341 key-path sighash (the FROST message). */
export interface GroupKeyInput {
  input: number;
  sighash: Uint8Array;
}

export interface DecodedGroupKeyPsbt {
  intent: Intent;
  /** The inputs to sign, in input order: one FROST session each. */
  inputs: GroupKeyInput[];
  /**
   * sha256 over a domain tag (with the network), the unsigned transaction and every (input, sighash): what a node's ledger keys a
   * decision by (a retry of the same PSBT is a replay, not a second charge) and what node and coordinator compare.
   */
  messageId: string;
  prepared: PreparedPsbt;
  outputKey: Uint8Array;
}

export function readTaprootKeyPathRequest(value: unknown): TaprootKeyPathRequest {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new AirlockError('invalid_request', 'a bitcoin.taproot_key_path request is an object');
  const { action, psbt, network, finalize, ...extra } = value as Record<string, unknown>;
  if (action !== TAPROOT_KEY_PATH_ACTION) throw new AirlockError('unsupported_action', `expected action ${TAPROOT_KEY_PATH_ACTION}`);
  if (Object.keys(extra).length > 0) throw new AirlockError('invalid_request', 'a bitcoin.taproot_key_path request is {action, psbt, network, finalize?}');
  if (typeof psbt !== 'string') throw new AirlockError('invalid_request', 'psbt: a base64 PSBT is required');
  if (finalize !== undefined && typeof finalize !== 'boolean') throw new AirlockError('invalid_request', 'finalize must be a boolean');
  return { action: TAPROOT_KEY_PATH_ACTION, psbt, network: readNetwork(network), ...(finalize !== undefined ? { finalize } : {}) };
}

/** `OP_1 <32-byte key>`: the P2TR script paying to an output key as it is (no tweak). */
export function taprootOutputScript(outputKey: Uint8Array): Uint8Array {
  return OutScript.encode({ type: 'tr', pubkey: outputKey });
}

/** Decodes a key-path PSBT for the x-only output key `groupKey` (hex). Every refusal names its code. */
export function decodeGroupKeyPsbt(request: TaprootKeyPathRequest, groupKey: string): DecodedGroupKeyPsbt {
  const outputKey = hexToBytes(groupKey);
  const groupScript = taprootOutputScript(outputKey);
  const { network } = request;
  const bytes = decodePsbtBase64(request.psbt);
  const { tx, version } = parsePsbt(bytes);
  assertSignableVersion(tx.version);
  const inputs = Array.from({ length: tx.inputsLength }, (_, i) => tx.getInput(i));
  const outputs = Array.from({ length: tx.outputsLength }, (_, i) => tx.getOutput(i));
  if (outputs.length === 0) throw new AirlockError('invalid_request', 'the transaction has no outputs');
  assertDistinctOutpoints(inputs);
  const prevouts = inputs.map(previousOutput);
  const feeSat = checkAmounts(prevouts, outputs);

  const own: OwnInput[] = [];
  inputs.forEach((input, i) => {
    if (!equalBytes(prevouts[i]!.script, groupScript)) return;
    if (isFinal(input)) throw new AirlockError('invalid_request', `input ${i} pays to the group key and is already final: there is nothing to sign`);
    if (input.tapLeafScript?.length || input.tapMerkleRoot) {
      throw new AirlockError('psbt_unsupported_input', `input ${i}: the group key has no script tree; a script path or merkle root is not signed`);
    }
    // DEFAULT only: NONE, SINGLE and ANYONECANPAY let someone change the transaction after the nodes signed,
    // and ALL (0x01) is the same commitment under another byte. One meaning, one policy decision.
    if (input.sighashType !== undefined && input.sighashType !== SIGHASH_DEFAULT) {
      throw new AirlockError('psbt_sighash_not_default', `input ${i} asks for sighash type ${input.sighashType}; the threshold cluster signs taproot key-path inputs with SIGHASH_DEFAULT only`);
    }
    own.push({ index: i, type: 'p2tr', path: '', publicKey: Uint8Array.of(0x02, ...outputKey), outputKey, sighash: SIGHASH_DEFAULT });
  });
  if (own.length === 0) throw new AirlockError('psbt_nothing_to_sign', 'no input spends an output paying to the group key (OP_1 <group key>)');
  assertSpendsValue(own, prevouts);

  const finalize = request.finalize === true;
  if (finalize) {
    const mine = new Set(own.map((o) => o.index));
    const open = inputs.findIndex((input, i) => !mine.has(i) && !isFinal(input));
    if (open >= 0) throw new AirlockError('invalid_request', `finalize: input ${open} does not pay to the group key and is not final; it cannot be finalized here`);
  }
  const prepared: PreparedPsbt = { kind: 'bitcoin.psbt', tx, bytes, version, finalize, inputs: own };
  try {
    completePsbt(prepared, placeholderSignatures(own));
  } catch (e) {
    throw new AirlockError('psbt_malformed', finalize ? 'the PSBT cannot be finalized' : 'the PSBT cannot take the signatures', { cause: e });
  }

  const signed = own.map((o) => ({ input: o.index, sighash: taprootSighash(tx, o.index, prevouts, SIGHASH_DEFAULT) }));
  // The network is committed to: the same PSBT under another network label is another task (another policy
  // asset), never a replay of a decision taken for the first label.
  const messageId = bytesToHex(
    taskCommitment(`${DOMAIN}/${network}`, tx.unsignedTx, signed.map((s) => ({ input: s.input, sighash: SIGHASH_DEFAULT, scheme: 'taproot-key-path' as const, path: '', digest: s.sighash }))),
  );
  const changePaths = outputs.map((o) => (o.script && equalBytes(o.script, groupScript) ? 'group-key' : undefined));
  const info = bitcoinInfo(tx, version, network, inputs, prevouts, outputs, own, changePaths, feeSat);
  // The group key has no derivation path: the inputs and change are recognised by their script alone.
  for (const input of info.inputs) delete input.path;
  for (const output of info.outputs) delete output.path;
  const intent = psbtIntent(info, addressOf(groupScript, network)!);
  return { intent, inputs: signed, messageId, prepared, outputKey };
}

/**
 * The coordinator's last step: each aggregated signature checked (BIP-340) against the OUTPUT key in the spent
 * script over the sighash decode computed, then put into the PSBT as PSBT_IN_TAP_KEY_SIG (and finalized when asked).
 */
export function completeGroupKeyPsbt(decoded: DecodedGroupKeyPsbt, signatures: readonly Uint8Array[]): { psbt: string; signedInputs: number[]; transaction?: string; txid?: string } {
  if (signatures.length !== decoded.inputs.length) throw new AirlockError('signature_check_failed', 'one signature per group-key input was expected');
  const checked = decoded.inputs.map((s, k) => checkedTaprootSignature({ schnorr: signatures[k]! }, s.sighash, decoded.outputKey, SIGHASH_DEFAULT));
  const result = completePsbt(decoded.prepared, checked);
  return { psbt: result.psbt!, signedInputs: [...(result.signedInputs ?? [])], ...(result.transaction ? { transaction: result.transaction } : {}), ...(result.txid ? { txid: result.txid } : {}) };
}
