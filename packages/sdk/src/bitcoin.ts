// A Bitcoin wallet whose keys live in Airlock: the agent's BIP-84 (P2WPKH) and BIP-86 (P2TR) accounts, PSBT
// signing under policy and BIP-322 message signatures, over the HTTP API with the agent's session token. What
// Airlock returns is checked here before the caller sees it (bitcoin-verify.ts): a signed PSBT is the one sent,
// signed only where Airlock says and validly; a message signature verifies; an address is the account's own.
import { HDKey } from '@scure/bip32';
import { p2tr, p2wpkh } from '@scure/btc-signer';
import { AirlockApiError, createAirlockHttp, type AirlockHttpOptions } from './http.ts';
import { signWithRetry, type SignAnswer } from './sign-request.ts';
import { btcNetwork, checkSignedPsbt, verifyBip322Simple, type BitcoinNetworkName } from './bitcoin-verify.ts';

export { verifyBip322Simple } from './bitcoin-verify.ts';

/** bitcoin (mainnet), testnet (testnet3), testnet4, signet or regtest. */
export type BitcoinNetwork = BitcoinNetworkName;
/** p2wpkh: BIP-84 account (m/84'/coin'/account'). p2tr: BIP-86 account (m/86'/…), taproot key path. */
export type BitcoinAddressType = 'p2wpkh' | 'p2tr';

/** One of the agent's accounts, watch-only. */
export interface BitcoinAccountKeys {
  /** e.g. m/84'/1'/3' */
  path: string;
  /** Account extended public key (xpub on mainnet, tpub elsewhere). */
  xpub: string;
  /** Output descriptor with key origin and checksum, receive and change in one (`<0;1>/*`, BIP-389). */
  descriptor: string;
  receiveDescriptor: string;
  changeDescriptor: string;
}

/** GET /v1/bitcoin/account: the agent's accounts on one network. */
export interface BitcoinAccount {
  network: BitcoinNetwork;
  /** The vault master key's BIP-32 fingerprint, 8 hex digits, as PSBT derivation fields name it. */
  fingerprint: string;
  accountIndex: number;
  accounts: Record<BitcoinAddressType, BitcoinAccountKeys>;
}

export interface BitcoinAddressRequest {
  network: BitcoinNetwork;
  /** Default p2wpkh. */
  type?: BitcoinAddressType;
  /** 0 receive (default), 1 change. */
  change?: 0 | 1;
  /** Default 0. */
  index?: number;
}

export interface BitcoinAddress {
  network: BitcoinNetwork;
  type: BitcoinAddressType;
  change: number;
  index: number;
  /** Full key path, e.g. m/84'/1'/3'/0/7 */
  path: string;
  address: string;
}

/** One input of a decoded PSBT as Airlock's intent shows it (amounts: decimal strings of satoshis). */
export interface BitcoinIntentInput {
  index: number;
  txid: string;
  vout: number;
  amountSat: string;
  address?: string;
  /** p2wpkh, p2tr, or the type of an input that is not the agent's (p2pkh, p2sh, p2wsh, unknown). */
  scriptType: string;
  /** One of the agent's own keys, proven by derivation: only these are signed. */
  ours: boolean;
  path?: string;
  sighash?: string;
  sequence: number;
}

export interface BitcoinIntentOutput {
  index: number;
  amountSat: string;
  address?: string;
  script: string;
  /** Proven to pay the agent's own change path. */
  change: boolean;
  path?: string;
}

/** What Airlock decoded a PSBT (or a message) to. */
export interface BitcoinIntentInfo {
  network: BitcoinNetwork;
  psbtVersion?: 0 | 2;
  txid?: string;
  inputs: BitcoinIntentInput[];
  outputs: BitcoinIntentOutput[];
  feeSat: string;
  vsize: number;
  /** sat/vB */
  feeRate: number;
  locktime: number;
  rbf: boolean;
  sighashes: string[];
  messageAddress?: string;
}

export interface BitcoinIntent {
  action: string;
  kind: string;
  chain: string;
  summary: string;
  bitcoin?: BitcoinIntentInfo;
  [field: string]: unknown;
}

export interface SignPsbtOptions {
  network: BitcoinNetwork;
  /** Also finalize every input and return the network transaction (inputs not the agent's must already be final). */
  finalize?: boolean;
  /** Idempotency-Key: the same key and PSBT sent again (another process, a crash) answers the same signatures, charged once. Default: a fresh key per call. */
  idempotencyKey?: string;
}

/** A PSBT signed by Airlock, checked here: same transaction, signatures only on `signedInputs`, each valid. */
export interface SignedPsbt {
  /** The PSBT with the agent's signatures added, base64, in the version it came in. */
  psbt: string;
  signedInputs: number[];
  /** finalize: the signed transaction, hex, ready to broadcast. */
  transaction?: string;
  /** finalize: its id. */
  txid?: string;
  /** What Airlock decoded the PSBT to: every input and output, change, the fee and fee rate. */
  intent: BitcoinIntent & { bitcoin: BitcoinIntentInfo };
  auditSeq: number;
  /** The Idempotency-Key had been used for this PSBT: the same signatures again, not charged again. */
  replayed: boolean;
}

export interface SignBitcoinMessageInput {
  message: string;
  network: BitcoinNetwork;
  addressType: BitcoinAddressType;
  change?: 0 | 1;
  index?: number;
}

export interface SignedBitcoinMessage {
  /** BIP-322 simple signature (the witness of to_sign), base64; verified here for `address`. */
  signature: string;
  address: string;
  intent: BitcoinIntent;
  auditSeq: number;
}

export interface AirlockBitcoinWalletOptions extends AirlockHttpOptions {
  /**
   * When a request needs human approval: wait up to this many ms for the decision (polling), then return the
   * result. Default 0: throw AirlockApprovalRequiredError at once.
   */
  approvalWaitMs?: number;
}

export interface AirlockBitcoinWallet {
  /** The agent's accounts on `network` (GET /v1/bitcoin/account); read once per network and kept. */
  account(network: BitcoinNetwork): Promise<BitcoinAccount>;
  /** One of the agent's addresses (GET /v1/bitcoin/address), checked against the account's extended key. */
  address(request: BitcoinAddressRequest): Promise<BitcoinAddress>;
  /**
   * Signs the PSBT's inputs that are the agent's, under policy (POST /v1/sign/psbt). Throws AirlockPolicyError
   * (violations) on a refusal, AirlockApprovalRequiredError on a hold, AirlockApiError with a `psbt_*` code for
   * a PSBT Airlock cannot sign, and AirlockApiError `invalid_response` for an answer that fails the checks.
   */
  signPsbt(psbtBase64: string, options: SignPsbtOptions): Promise<SignedPsbt>;
  /**
   * A BIP-322 simple signature by one of the agent's addresses (POST /v1/sign/bitcoin-message), verified here: the
   * address is the account's own at addressType change/index (derived from its extended key), and the signature
   * verifies for it. Otherwise AirlockApiError `invalid_response`.
   */
  signMessage(input: SignBitcoinMessageInput): Promise<SignedBitcoinMessage>;
}

/** The answer of POST /v1/sign/psbt: what SignedPsbt holds, with `replayed` only when true. */
interface SignPsbtBody extends Omit<SignAnswer, 'signature'>, Omit<SignedPsbt, 'replayed'> {
  replayed?: true;
}

/** The answer of POST /v1/sign/bitcoin-message: what SignedBitcoinMessage holds. */
interface SignMessageBody extends Omit<SignAnswer, 'signature'>, SignedBitcoinMessage {}

/** A Bitcoin wallet for the agent whose session token `options.token` is. */
export function airlockBitcoinWallet(options: AirlockBitcoinWalletOptions): AirlockBitcoinWallet {
  const http = createAirlockHttp(options);
  const approvalWaitMs = options.approvalWaitMs ?? 0;
  const accounts = new Map<BitcoinNetwork, Promise<BitcoinAccount>>();
  const account = (network: BitcoinNetwork) => {
    let known = accounts.get(network);
    if (!known) {
      known = http.request<BitcoinAccount>('GET', `/v1/bitcoin/account?network=${encodeURIComponent(network)}`).then((r) => r.body);
      // A failed read is not kept: the next call asks again.
      known.catch(() => accounts.delete(network));
      accounts.set(network, known);
    }
    return known;
  };
  return {
    account,
    async address({ network, type = 'p2wpkh', change = 0, index = 0 }) {
      const q = new URLSearchParams({ network, type, change: String(change), index: String(index) });
      const { body } = await http.request<BitcoinAddress>('GET', `/v1/bitcoin/address?${q}`);
      // An address to be paid at must be one the account's watchers (descriptors, xpub) see.
      const expected = bitcoinAddressOf(await account(network), { type, change, index });
      if (body.address !== expected || body.type !== type || body.change !== change || body.index !== index) {
        throw new AirlockApiError(200, 'invalid_response', `Airlock returned an address that is not ${type} ${change}/${index} of the agent's account.`);
      }
      return body;
    },
    async signPsbt(psbtBase64, { network, finalize, idempotencyKey }) {
      const request = { psbt: psbtBase64, network, ...(finalize !== undefined ? { finalize } : {}) };
      const out = await signWithRetry<SignPsbtBody & SignAnswer>(http, '/v1/sign/psbt', request, approvalWaitMs, idempotencyKey);
      if (typeof out.psbt !== 'string' || !Array.isArray(out.signedInputs)) throw new AirlockApiError(200, 'invalid_response', 'Airlock answered a PSBT signing without a PSBT.');
      checkSignedPsbt(psbtBase64, out, finalize === true);
      return {
        psbt: out.psbt,
        signedInputs: out.signedInputs,
        ...(out.transaction !== undefined ? { transaction: out.transaction } : {}),
        ...(out.txid !== undefined ? { txid: out.txid } : {}),
        intent: out.intent,
        auditSeq: out.auditSeq,
        replayed: out.replayed === true,
      };
    },
    async signMessage({ message, network, addressType, change, index }) {
      const request = { message, network, addressType, ...(change !== undefined ? { change } : {}), ...(index !== undefined ? { index } : {}) };
      const out = await signWithRetry<SignMessageBody & SignAnswer>(http, '/v1/sign/bitcoin-message', request, approvalWaitMs);
      if (typeof out.signature !== 'string' || typeof out.address !== 'string' || !verifyBip322Simple(out.address, message, out.signature, network)) {
        throw new AirlockApiError(200, 'invalid_response', 'Airlock returned a BIP-322 signature that does not verify for the address it names.');
      }
      // A proof for the address asked for: derived here from the account's extended key, as address() does.
      const expected = bitcoinAddressOf(await account(network), { type: addressType, change: change ?? 0, index: index ?? 0 });
      if (out.address !== expected) {
        throw new AirlockApiError(200, 'invalid_response', `Airlock returned a BIP-322 signature for ${out.address}, not for ${addressType} ${change ?? 0}/${index ?? 0} of the agent's account (${expected}).`);
      }
      return { signature: out.signature, address: out.address, intent: out.intent, auditSeq: out.auditSeq };
    },
  };
}

/** BIP-32 version bytes of extended public keys: xpub (mainnet), tpub (every test network). */
const XPUB_VERSIONS = { xpub: { public: 0x0488b21e, private: 0x0488ade4 }, tpub: { public: 0x043587cf, private: 0x04358394 } } as const;

/**
 * An address of the account, derived here from its extended public key (watch-only, no call to Airlock):
 * m/…/change/index, P2WPKH (BIP-84) or the BIP-86 taproot output of the key (no script tree).
 */
export function bitcoinAddressOf(account: BitcoinAccount, at: { type: BitcoinAddressType; change?: 0 | 1; index?: number }): string {
  const keys = account.accounts[at.type];
  const versions = keys.xpub.startsWith('tpub') ? XPUB_VERSIONS.tpub : XPUB_VERSIONS.xpub;
  const index = at.index ?? 0;
  if (!Number.isInteger(index) || index < 0 || index >= 0x80000000) throw new AirlockApiError(400, 'invalid_request', 'An address index is an integer from 0 to 2^31-1.');
  const publicKey = HDKey.fromExtendedKey(keys.xpub, versions).deriveChild(at.change ?? 0).deriveChild(index).publicKey!;
  const network = btcNetwork(account.network);
  return (at.type === 'p2wpkh' ? p2wpkh(publicKey, network) : p2tr(publicKey.subarray(1), undefined, network)).address!;
}
