// `airlock bitcoin`: an agent's Bitcoin accounts (descriptors and xpubs to watch them with, its first receive
// addresses), and what a PSBT would do for an agent (every input and output, the fee, the sighashes) with the
// decision policy would take, without signing it.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { AirlockError } from '@airlock/core';
import { bitcoinAddressOf, type BitcoinAccount, type BitcoinAddressType, type BitcoinIntent, type BitcoinIntentInfo } from '@airlock/sdk/bitcoin';
import type { Command } from '../context.ts';
import { need, positiveInt, usage, UsageError } from '../args.ts';
import { printJson, table } from '../format.ts';

const NETWORKS = ['bitcoin', 'testnet', 'testnet4', 'signet', 'regtest'];
const TYPES: { type: BitcoinAddressType; standard: string }[] = [
  { type: 'p2wpkh', standard: 'BIP-84' },
  { type: 'p2tr', standard: 'BIP-86, taproot key path' },
];
const DEFAULT_COUNT = 3;
const MAX_COUNT = 100;
/** A binary PSBT starts with these bytes (BIP-174): `psbt` and 0xff. */
const PSBT_MAGIC = Buffer.from('70736274ff', 'hex');

interface DryRunJson {
  decision: { decision: 'allow' | 'deny' | 'require_approval'; violations: { rule: string; code: string; message: string }[]; allowedBy: string[]; policyVersion: string };
  intent: BitcoinIntent;
  digest: string;
}

export const bitcoinCommand: Command = {
  name: 'bitcoin',
  summary: 'account | decode: an agent\'s Bitcoin accounts, and what a PSBT would do (dry-run, nothing signed)',
  usage: [
    'airlock bitcoin account <agent> [--network N] [--count N]',
    '    descriptors (checksummed, with key origin) and xpubs of the agent\'s P2WPKH (BIP-84) and P2TR (BIP-86)',
    `    accounts, and its first receive addresses (${DEFAULT_COUNT} by default, derived here from the xpubs)`,
    'airlock bitcoin decode <agent> <psbt-file|base64> [--network N]',
    '    every input (the agent\'s or not, its path), every output (change or external, address), the fee, fee',
    '    rate and sighashes, and the decision the agent\'s policy would take now, with its violations.',
    '    Nothing is signed, reserved or recorded. Exit 0 whatever the decision (the PSBT was decoded); to gate',
    '    on the decision use `airlock policy dry-run --action bitcoin.psbt` (exit 3 deny, 4 approval).',
    '    The PSBT: a file (binary or base64 text) or the base64 itself.',
    `--network: ${NETWORKS.join(', ')} (default bitcoin)`,
  ].join('\n'),
  options: { network: { type: 'string' }, count: { type: 'string' } },
  async run(ctx, { values, positionals }) {
    const [sub, agent, source] = positionals;
    // Usage before credentials: a typo should print usage, not ask for a token.
    if (!['account', 'decode'].includes(sub ?? '')) throw usage(this.usage);
    const network = String(values.network ?? 'bitcoin');
    if (!NETWORKS.includes(network)) throw new UsageError(`--network: expected one of ${NETWORKS.join(', ')}`);
    const name = need(agent, 'agent');
    if (sub === 'account') {
      if (positionals.length > 2) throw usage(this.usage);
      const count = values.count === undefined ? DEFAULT_COUNT : positiveInt(values.count, 'count');
      if (count > MAX_COUNT) throw new UsageError(`--count: at most ${MAX_COUNT}`);
      const { body } = await ctx.admin().request<BitcoinAccount>('GET', `/v1/agents/${encodeURIComponent(name)}/bitcoin?network=${network}`);
      const addresses = Object.fromEntries(TYPES.map(({ type }) => [type, firstReceiveAddresses(body, type, count)]));
      if (ctx.json) return printJson({ ...body, receiveAddresses: addresses });
      return console.log(describeAccount(name, body, addresses));
    }
    if (positionals.length > 3) throw usage(this.usage);
    const psbt = readPsbt(need(source, 'psbt-file|base64'));
    const { body } = await ctx.admin().request<DryRunJson>('POST', '/v1/policies/dry-run', { agent: name, action: 'bitcoin.psbt', payload: { psbt, network } });
    if (ctx.json) return printJson(body);
    return console.log(describeDecoded(body));
  },
};

/** The PSBT as base64: a file holding it (binary or text), or the argument itself. */
function readPsbt(source: string): string {
  if (existsSync(source) && statSync(source).isFile()) {
    const bytes = readFileSync(source);
    if (bytes.subarray(0, PSBT_MAGIC.length).equals(PSBT_MAGIC)) return bytes.toString('base64');
    const text = bytes.toString('utf8').trim();
    // Hex is how some tools print a PSBT (bitcoin-cli does not, but PSBT libraries often do).
    return /^(70736274ff)[0-9a-f]*$/i.test(text) ? Buffer.from(text, 'hex').toString('base64') : text;
  }
  if (/^[A-Za-z0-9+/]+={0,2}$/.test(source)) return source;
  throw new AirlockError('invalid_request', `${source}: no such file, and not a base64 PSBT.`);
}

function firstReceiveAddresses(account: BitcoinAccount, type: BitcoinAddressType, count: number): { index: number; path: string; address: string }[] {
  const base = account.accounts[type].path;
  return Array.from({ length: count }, (_, index) => ({ index, path: `${base}/0/${index}`, address: bitcoinAddressOf(account, { type, change: 0, index }) }));
}

function describeAccount(agent: string, account: BitcoinAccount, addresses: Record<string, { index: number; address: string }[]>): string {
  const lines = [`agent        ${agent} (account ${account.accountIndex})`, `network      ${account.network}`, `fingerprint  ${account.fingerprint}`];
  for (const { type, standard } of TYPES) {
    const keys = account.accounts[type];
    lines.push('', `${type}  ${keys.path}  (${standard})`);
    lines.push(`  xpub        ${keys.xpub}`);
    lines.push(`  descriptor  ${keys.descriptor}`);
    lines.push(`  receive     ${keys.receiveDescriptor}`);
    lines.push(`  change      ${keys.changeDescriptor}`);
    addresses[type]!.forEach((a, i) => lines.push(`  ${i === 0 ? 'addresses ' : '          '}  ${a.index}  ${a.address}`));
  }
  return lines.join('\n');
}

function describeDecoded({ decision, intent }: DryRunJson): string {
  const btc = intent.bitcoin as BitcoinIntentInfo;
  const lines = [
    `txid         ${btc.txid ?? '-'}${btc.psbtVersion !== undefined ? `  (PSBT v${btc.psbtVersion})` : ''}`,
    `network      ${btc.network}`,
    `fee          ${btc.feeSat} sat  (${btc.feeRate} sat/vB over ${btc.vsize} vB)`,
    `sighashes    ${btc.sighashes.length > 0 ? btc.sighashes.join(', ') : '-'}`,
    `locktime     ${btc.locktime}${btc.rbf ? '  (replaceable: signals RBF)' : ''}`,
    '',
    `inputs (${btc.inputs.length})`,
    table(
      btc.inputs.map((i) => ({ '#': i.index, outpoint: `${i.txid}:${i.vout}`, amount_sat: i.amountSat, type: i.scriptType, ours: i.ours ? 'yes' : 'no', path: i.path, sighash: i.sighash })),
      ['#', 'outpoint', 'amount_sat', 'type', 'ours', 'path', 'sighash'],
    ),
    '',
    `outputs (${btc.outputs.length})`,
    table(
      btc.outputs.map((o) => ({ '#': o.index, amount_sat: o.amountSat, kind: o.change ? 'change' : 'external', address: o.address ?? `script ${o.script}`, path: o.path })),
      ['#', 'amount_sat', 'kind', 'address', 'path'],
    ),
    '',
    `decision     ${decision.decision.toUpperCase()}  (policy ${decision.policyVersion}${decision.allowedBy.length > 0 ? `; allowed by ${decision.allowedBy.join(', ')}` : ''})`,
    ...decision.violations.map((v) => `  ${v.rule}  ${v.code}: ${v.message}`),
    '(nothing was signed)',
  ];
  return lines.join('\n');
}
