// bitcoin.message: a BIP-322 "simple" signature, proof that the agent controls one of its addresses. BIP-322:
// to_spend (version 0, one input spending 000…000:0xFFFFFFFF with scriptSig OP_0 PUSH32[message_hash],
// sequence 0; one 0-value output paying the address's script) and to_sign (version 0, spending to_spend:0 with
// sequence 0, one 0-value OP_RETURN output), signed as any input of that script type would be: BIP-143 ALL for
// P2WPKH, BIP-341 DEFAULT for P2TR. The signature is to_sign's witness stack, consensus-encoded, base64.
import { AirlockError, BITCOIN_CHAINS, type BitcoinNetwork, type DecodedRequest, type Intent, type ProducedSignature, type SignerContext, type SignResult } from '@airlock/core';
import { schnorr } from '@noble/curves/secp256k1.js';
import { bytesToHex, concatBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import { base64 } from '@scure/base';
import { RawTx, RawWitness, Transaction } from '@scure/btc-signer';
import { sha256x2 } from '@scure/btc-signer/utils.js';
import { addressOf, assertIndex, BitcoinAccount, formatPath, PURPOSES, scriptOf, type BitcoinAddressType } from './account.ts';
import { coinType, readNetwork } from './networks.ts';
import { segwitV0Sighash, SIGHASH_ALL, SIGHASH_DEFAULT, taprootSighash } from './sighash.ts';
import { checkedEcdsaSignature, checkedTaprootSignature, taskCommitment } from './signatures.ts';

export interface Bip322Request {
  /** The message, utf8. */
  message: string;
  network: BitcoinNetwork;
  addressType: BitcoinAddressType;
  /** 0 receive (default), 1 change. */
  change?: 0 | 1;
  /** Address index (default 0). */
  index?: number;
}

interface PreparedMessage {
  kind: 'bitcoin.message';
  type: BitcoinAddressType;
  address: string;
  publicKey: Uint8Array;
  /** P2TR: the output key the signature verifies against. */
  outputKey?: Uint8Array;
}

const MESSAGE_DOMAIN = 'airlock/bitcoin.message/v1';

/** BIP-322 message_hash: the BIP-340 tagged hash "BIP0322-signed-message" of the message bytes as they are. */
export function bip322MessageHash(message: Uint8Array): Uint8Array {
  return schnorr.utils.taggedHash('BIP0322-signed-message', message);
}

/** to_spend and to_sign for a message and the script of the address that signs it. */
export function bip322Transactions(message: Uint8Array, script: Uint8Array): { toSpendTxid: string; toSign: Transaction } {
  const toSpend = RawTx.encode({
    version: 0,
    segwitFlag: false,
    inputs: [{ txid: new Uint8Array(32), index: 0xffffffff, sequence: 0, finalScriptSig: concatBytes(Uint8Array.of(0x00, 0x20), bip322MessageHash(message)) }],
    outputs: [{ amount: 0n, script }],
    witnesses: undefined,
    lockTime: 0,
  });
  const toSpendTxid = bytesToHex(sha256x2(toSpend).reverse());
  const toSign = new Transaction({ version: 0, lockTime: 0, allowUnknownOutputs: true });
  toSign.addInput({ txid: toSpendTxid, index: 0, sequence: 0, witnessUtxo: { amount: 0n, script } });
  toSign.addOutput({ script: Uint8Array.of(0x6a), amount: 0n });
  return { toSpendTxid, toSign };
}

export function decodeBip322Request(payload: unknown, signer: SignerContext): DecodedRequest {
  const request = readBip322Request(payload);
  const { network, addressType: type } = request;
  const account = BitcoinAccount.fromSigner(signer);
  const purpose = PURPOSES[type];
  const coin = coinType(network);
  const change = request.change ?? 0;
  const index = request.index ?? 0;
  const publicKey = account.publicKey(purpose, coin, change, index);
  const script = scriptOf(type, publicKey);
  const address = addressOf(script, network)!;
  const bytes = utf8ToBytes(request.message);
  const { toSign } = bip322Transactions(bytes, script);
  const sighash = type === 'p2wpkh' ? SIGHASH_ALL : SIGHASH_DEFAULT;
  const digest = type === 'p2wpkh' ? segwitV0Sighash(toSign, 0, publicKey, 0n, sighash) : taprootSighash(toSign, 0, [{ script, amount: 0n }], sighash);
  const task = { input: 0, sighash, path: formatPath([...account.accountIndexes(purpose, coin), change, index]), scheme: type === 'p2wpkh' ? ('ecdsa-secp256k1' as const) : ('taproot-key-path' as const), digest };
  const chain = BITCOIN_CHAINS[network];
  const intent: Intent = {
    action: 'bitcoin.message',
    chain,
    kind: 'message.bip322',
    from: account.keyOrigin(purpose, coin),
    spends: [],
    approvals: [],
    message: { text: request.message, hex: `0x${bytesToHex(bytes)}` },
    bitcoin: { network, inputs: [], outputs: [], feeSat: 0n, vsize: 0, feeRate: 0, locktime: 0, rbf: false, sighashes: [type === 'p2wpkh' ? 'all' : 'default'], messageAddress: address },
    summary: `sign a BIP-322 message (${bytes.length} bytes) as ${address} (${task.path}) on ${network}`,
  };
  const prepared: PreparedMessage = { kind: 'bitcoin.message', type, address, publicKey, ...(type === 'p2tr' ? { outputKey: script.slice(2) } : {}) };
  return { intent, digest: taskCommitment(MESSAGE_DOMAIN, toSign.unsignedTx, [task]), tasks: [{ path: task.path, digest, scheme: task.scheme }], prepared };
}

/** The BIP-322 simple signature: to_sign's witness, checked against the address's key before it is returned. */
export function finalizeBip322(decoded: DecodedRequest, all: readonly ProducedSignature[]): SignResult {
  const prepared = decoded.prepared as PreparedMessage | undefined;
  const task = decoded.tasks?.[0];
  if (prepared?.kind !== 'bitcoin.message' || !task || decoded.tasks!.length !== 1 || all.length !== 1) {
    throw new AirlockError('signature_check_failed', 'the signature does not match the decoded message');
  }
  const witness =
    prepared.type === 'p2wpkh'
      ? [checkedEcdsaSignature(all[0], task.digest, prepared.publicKey, SIGHASH_ALL), prepared.publicKey]
      : [checkedTaprootSignature(all[0], task.digest, prepared.outputKey!, SIGHASH_DEFAULT)];
  return { signature: base64.encode(RawWitness.encode(witness)), address: prepared.address };
}

function readBip322Request(payload: unknown): Bip322Request {
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) throw new AirlockError('invalid_request', 'a bitcoin.message request is an object');
  const { message, network, addressType, change, index } = payload as Record<string, unknown>;
  // A lone surrogate would be signed as U+FFFD: the bytes signed would not be the text the agent sent.
  if (typeof message !== 'string' || !message.isWellFormed()) throw new AirlockError('invalid_request', 'message: a well-formed utf8 string is required');
  if (addressType !== 'p2wpkh' && addressType !== 'p2tr') throw new AirlockError('invalid_request', 'addressType must be p2wpkh or p2tr');
  if (change !== undefined && change !== 0 && change !== 1) throw new AirlockError('invalid_request', 'change must be 0 (receive) or 1 (change)');
  if (index !== undefined) assertIndex(index, 'index');
  return { message, network: readNetwork(network), addressType, ...(change !== undefined ? { change } : {}), ...(index !== undefined ? { index } : {}) };
}
