// The intent of a decoded PSBT: what policy, the audit log and a human approving it read.
import { BITCOIN_CHAINS, bitcoinAsset, type BitcoinInfo, type BitcoinInput, type BitcoinNetwork, type BitcoinOutput, type Intent, type SighashName, type Spend } from '@airlock/core';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { OutScript, type Transaction } from '@scure/btc-signer';
import type { TransactionInput, TransactionOutput } from '@scure/btc-signer/psbt.js';
import { addressOf } from './account.ts';
import type { Prevout } from './psbt-ownership.ts';
import type { OwnInput } from './psbt-sign.ts';
import { commitsToOutput, isAnyoneCanPay, sighashName } from './sighash.ts';
import { highestFeeRate, higherRate, otherInputSize, ownInputSize, virtualSize, type InputSize, type RateBasis } from './vsize.ts';

function scriptTypeOf(script: Uint8Array): string {
  try {
    const type = OutScript.decode(script).type;
    const names: Record<string, string> = { wpkh: 'p2wpkh', tr: 'p2tr', pkh: 'p2pkh', sh: 'p2sh', wsh: 'p2wsh', pk: 'p2pk', ms: 'multisig', p2a: 'p2a' };
    return names[type] ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

export function bitcoinInfo(
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
  const sizes = inputs.map((input, i) => {
    const mine = ownByIndex.get(i);
    return mine ? ownInputSize(mine.type, mine.sighash) : otherInputSize(input, prevouts[i]!.script);
  });
  const { feeSat: rateFeeSat, vsize } = rateBasis(prevouts, outputs, own, sizes, feeSat);
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
    // Rounded up: a rule capping the rate must never see less than the true figure. feeSat / vsize, unless the
    // signatures allow a transaction with a higher fee than this one's (rateBasis).
    feeRate: Number((rateFeeSat * 1000n + BigInt(vsize) - 1n) / BigInt(vsize)) / 1000,
    locktime: tx.lockTime,
    rbf: infoInputs.some((i) => i.sequence < 0xfffffffe),
    sighashes,
  };
}

/** The smallest output there is (an empty script, 9 bytes): a transaction has at least one output. */
const SMALLEST_OUTPUT = new Uint8Array(0);

/**
 * The transaction the fee rate is judged on: the one paying the highest rate that the agent's signatures allow,
 * not only the PSBT's. The agent's signatures commit to some inputs and outputs; the rest can change after they
 * are made (an attack review had a co-signer's 0-sat P2SH 15-of-15 input judged beside the agent's
 * ALL|ANYONECANPAY input at 2.85 sat/vB under a 10 sat/vB cap; the chain took the agent's input alone at
 * 50 sat/vB). So:
 * - With every input (what a signature without ANYONECANPAY needs): the outputs that some signature of the agent
 *   commits to, the others removed (SIGHASH_NONE, or SINGLE at another index, commits to none of them), and the
 *   fee every input minus those outputs: the PSBT's own fee and size when every signature is ALL or DEFAULT.
 * - When some signature is ANYONECANPAY: any of the inputs other signers hold and of the agent's ANYONECANPAY
 *   ones, with the outputs every signature of the agent commits to; the subset paying the highest rate
 *   (highestFeeRate). Its own coins count too: dust of the agent's, signed ANYONECANPAY and left out after,
 *   would pad the size like a co-signer's. The subset may leave out all of the agent's inputs (a transaction
 *   its signatures are not in): a bound above the true one, which can only make a cap refuse.
 * Inputs no PSBT shows can always be added under ANYONECANPAY, paying whatever their owner gives away: what a
 * cap bounds is the fee from the coins the PSBT shows. The absolute caps (max_fee_sat, max_fee_percent) judge the
 * highest fee the signatures allow on the same basis (core policy/rules/bitcoin.ts, `feeBasis`); what is charged is
 * the PSBT's own fee.
 */
function rateBasis(prevouts: readonly Prevout[], outputs: readonly TransactionOutput[], own: readonly OwnInput[], sizes: readonly InputSize[], feeSat: bigint): RateBasis {
  const committed = (every: boolean) =>
    outputs.flatMap((_, i) => {
      const commits = (mine: OwnInput) => commitsToOutput(mine.sighash, mine.index, i);
      return (every ? own.every(commits) : own.some(commits)) ? [i] : [];
    });
  const scripts = (indexes: readonly number[]) => (indexes.length > 0 ? indexes.map((i) => outputs[i]!.script!) : [SMALLEST_OUTPUT]);
  const amount = (indexes: readonly number[]) => indexes.reduce((sum, i) => sum + outputs[i]!.amount!, 0n);
  const some = committed(false);
  const allInputs = prevouts.reduce((sum, p) => sum + p.amount, 0n);
  // Never below the PSBT's fee (it is, whenever every output is committed to).
  const whole: RateBasis = { feeSat: some.length === outputs.length ? feeSat : allInputs - amount(some), vsize: virtualSize(sizes, scripts(some)) };
  if (!own.some((mine) => isAnyoneCanPay(mine.sighash))) return whole;
  const ownByIndex = new Map(own.map((o) => [o.index, o]));
  const optional = prevouts.flatMap((p, i) => {
    const mine = ownByIndex.get(i);
    return !mine || isAnyoneCanPay(mine.sighash) ? [{ size: sizes[i]!, amount: p.amount }] : [];
  });
  const every = committed(true);
  const smaller = highestFeeRate(optional, scripts(every), amount(every));
  return smaller && higherRate(smaller, whole) ? smaller : whole;
}

/**
 * The longest output script a destination names by its hex: a bare 1-of-3 multisig of uncompressed keys, the
 * longest script that was standard before Bitcoin Core 30 (an OP_RETURN was at most 83 bytes), so every payee
 * the network relayed before keeps its name. A destination is part of ledger series names and of PostgreSQL
 * index keys, which hold at most 2,704 bytes: a PSBT paying a 1,400-byte OP_RETURN (standard since Core 30) was
 * refused there on every attempt (found by review).
 */
const SCRIPT_NAMED_BY_HEX_MAX_BYTES = 201;

/** What an output without an address is called in policy, the ledger and the audit log: `script:<hex>`, or `script:sha256:<hex>` when long. */
function scriptDestination(scriptHex: string): string {
  if (scriptHex.length <= 2 * SCRIPT_NAMED_BY_HEX_MAX_BYTES) return `script:${scriptHex}`;
  return `script:sha256:${bytesToHex(sha256(hexToBytes(scriptHex)))}`;
}

export function psbtIntent(info: BitcoinInfo, from: string): Intent {
  const chain = BITCOIN_CHAINS[info.network];
  const asset = bitcoinAsset(chain);
  const external = info.outputs.filter((o) => !o.change);
  // What the agent can lose is its inputs minus its change. The spends (every non-change output plus the fee)
  // are every input minus the change: that plus the inputs presented as others', so never less, but only while
  // every amount is the one the chain holds the transaction to. An input presented as another signer's (no
  // derivation fields) can be the agent's own coin, understated here and signed in another request that
  // understates this one's: the two signatures make one transaction, each request charged a fee of 0 (an
  // attack review burnt 100,000 sat that way). So decode (psbt-decode.ts) takes no amount on trust: a taproot
  // signature without ANYONECANPAY commits to every input's amount and script (a lie makes it worthless);
  // otherwise (a P2WPKH signature commits to its own amount only, ANYONECANPAY to its own input only) every
  // input must carry its full previous transaction, checked against its outpoint; and under ALL|ANYONECANPAY no
  // output counts as returned change. Signing one transaction in several requests charges its fee and outputs
  // in each: more than once, never less. On-chain amounts are charged in millisatoshis (sat x 1000): one budget
  // covers Lightning and on-chain. The intent's outputs keep each script whole (scriptDestination).
  const spends: Spend[] = external.map((o) => ({ asset, amount: o.amountSat * 1000n, decimals: 11, to: o.address ?? scriptDestination(o.script), kind: 'transfer' }));
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
