// (4) Policy evaluation time per request, 10/100/1,000 rules x address sets of 10 and 10,000 entries.
// Target: < 20 µs per evaluation at 100 rules. Alone: node bench/policy.ts [--quick]
import { fileURLToPath } from 'node:url';
import { compilePolicy, evaluatePolicy, ledgerViewFrom, requiredWindows, type EvaluationInput, type PolicyLayer } from '../packages/core/src/index.ts';
import { figure, fmt, microsPerCall, type BenchOptions, type Figure } from './lib/stats.ts';

const USDC = 'eip155:8453/erc20:0x833589fcd6edb6e08f4c7c32d4f71b54bda02913';
const ETH = 'eip155:8453/slip44:60';
const address = (i: number) => `0x${i.toString(16).padStart(40, '0')}`;

function policyWith(ruleCount: number, setSize: number): unknown {
  const partners = Array.from({ length: setSize }, (_, i) => address(i + 1));
  const blocked = Array.from({ length: setSize }, (_, i) => address(1_000_000 + i));
  const kinds = [
    (i: number) => ({ name: `allow-${i}`, type: 'allow', match: { actions: ['evm.transaction'], chains: ['eip155:8453'], to: '$partners', assets: [USDC] } }),
    (i: number) => ({ name: `deny-${i}`, type: 'deny', match: { to: '$blocked' } }),
    (i: number) => ({ name: `max-${i}`, type: 'max_amount', asset: USDC, max: '100000000' }),
    (i: number) => ({ name: `budget-${i}`, type: 'budget', asset: USDC, max: '500000000', window: `${(i % 24) + 1}h`, scope: 'agent' }),
    (i: number) => ({ name: `rate-${i}`, type: 'rate_limit', max: 100, window: `${(i % 60) + 1}m` }),
    (i: number) => ({ name: `dest-${i}`, type: 'destinations', allow: '$partners' }),
    (i: number) => ({ name: `fees-${i}`, type: 'fee_cap', max_fee_per_gas: '100000000000', max_total_fee: '10000000000000000' }),
    (i: number) => ({ name: `chains-${i}`, type: 'chains', allow: ['eip155:8453', 'eip155:1'] }),
    (i: number) => ({ name: `tier-${i}`, type: 'approval_tier', asset: USDC, above: '90000000' }),
    (i: number) => ({ name: `approvals-${i}`, type: 'approvals', allow_unlimited: false, spenders: '$partners' }),
  ];
  return { version: 1, sets: { partners, blocked }, rules: Array.from({ length: ruleCount }, (_, i) => kinds[i % kinds.length]!(i)) };
}

const to = address(7);
export const sampleInput: EvaluationInput = {
  agentId: 'ag_0123456789abcdef',
  sessionId: 'ses_0123456789abcdef',
  nowMs: 1_750_000_000_000,
  intent: {
    action: 'evm.transaction',
    chain: 'eip155:8453',
    kind: 'erc20.transfer',
    from: address(99),
    to,
    spends: [
      { asset: USDC, amount: 5_000_000n, to, kind: 'transfer' },
      { asset: ETH, amount: 21_000n * 1_000_000_000n, kind: 'fee' },
    ],
    approvals: [],
    fees: { gasLimit: 65_000n, maxFeePerGas: 1_000_000_000n, maxTotalFee: 65_000_000_000_000n },
    summary: 'transfer 5 USDC',
  },
};

export interface PolicyResult {
  /** key `${rules}x${setSize}`: µs per evaluation (ledger view built by ledgerViewFrom, as the service does). */
  cells: Record<string, { rules: number; setSize: number; micros: Figure; decision: string }>;
}

export function benchPolicy(o: BenchOptions): PolicyResult {
  const cells: PolicyResult['cells'] = {};
  for (const setSize of [10, 10_000]) {
    for (const ruleCount of [10, 100, 1000]) {
      const layers: PolicyLayer[] = [{ layer: 'agent', label: 'agent@1:bench', policy: compilePolicy(policyWith(ruleCount, setSize)) }];
      const windows = requiredWindows(layers, sampleInput);
      const ledger = ledgerViewFrom(windows, windows.map(() => ({ amount: 1_000_000n, count: 3 })));
      const iterations = Math.max(500, Math.floor((o.quick ? 200_000 : 1_000_000) / ruleCount));
      const rounds = Array.from({ length: o.rounds }, () => microsPerCall(iterations, () => evaluatePolicy(layers, sampleInput, ledger)));
      const decision = evaluatePolicy(layers, sampleInput, ledger).decision;
      cells[`${ruleCount}x${setSize}`] = { rules: ruleCount, setSize, micros: figure(rounds), decision };
      o.log(`  policy ${ruleCount} rules, ${setSize}-entry sets: ${fmt(cells[`${ruleCount}x${setSize}`]!.micros, 2)} µs (${decision})`);
    }
  }
  return { cells };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  benchPolicy({ rounds: 5, quick: process.argv.includes('--quick'), log: console.log });
}
