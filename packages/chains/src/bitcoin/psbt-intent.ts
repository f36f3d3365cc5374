// The intent of a decoded PSBT: what policy, the audit log and a human approving it read.
import { BITCOIN_CHAINS, bitcoinAsset, type BitcoinInfo, type BitcoinInput, type BitcoinNetwork, type BitcoinOutput, type Intent, type SighashName, type Spend } from '@airlock/core';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { OutScript, type Transaction } from '@scure/btc-signer';
import type { TransactionInput, TransactionOutput } from '@scure/btc-signer/psbt.js';
import { addressOf } from './account.ts';
import type { Prevout } from './psbt-ownership.ts';
import type { OwnInput } from './psbt-sign.ts';
import { sighashName } from './sighash.ts';
import { otherInputSize, ownInputSize, virtualSize } from './vsize.ts';

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
  // covers Lightning and on-chain.
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
