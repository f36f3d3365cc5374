// Which inputs and outputs of a PSBT are the agent's. An input is, only when its BIP-32 derivation (P2WPKH) or
// taproot derivation (P2TR key path) names the vault's master fingerprint and a path
// m/<84|86>'/<coin>'/<account>'/<0|1>/<i> of THIS agent's account, and deriving that path from the account key
// gives the key listed and the very script the input spends. An output is change only when its derivation names
// the agent's change branch (…/1/i) and derivation reproduces its script. A claim is never taken at its word.
import { AirlockError } from '@airlock/core';
import { equalBytes } from '@noble/curves/utils.js';
import { OutScript } from '@scure/btc-signer';
import type { TransactionInput, TransactionOutput } from '@scure/btc-signer/psbt.js';
import { BitcoinAccount, formatPath, HARDENED, scriptOf } from './account.ts';
import type { OwnInput } from './psbt-sign.ts';
import { SIGHASH_ALL, SIGHASH_DEFAULT, sighashName } from './sighash.ts';

export type Prevout = { script: Uint8Array; amount: bigint };

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
export function ownInput(input: TransactionInput, prevout: Prevout, i: number, account: BitcoinAccount, coin: 0 | 1): OwnInput | undefined {
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

export function isFinal(input: TransactionInput): boolean {
  return (input.finalScriptSig?.length ?? 0) > 0 || (input.finalScriptWitness?.length ?? 0) > 0;
}

/** The agent's change path of an output, when its derivation names the change branch and reproduces its script. */
export function changePath(output: TransactionOutput, i: number, account: BitcoinAccount, coin: 0 | 1): string | undefined {
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
