// Signing load against real daemons, shared by the crash, race and store-fault parts. Every answer is
// kept with its timing so a part can judge it against what was happening (a kill, an outage) at the time.
import type { Hex } from 'viem';
import { httpJson, type HttpResult } from '../packages/server/src/testing/processes.ts';
import { ALICE, usdcTransfer } from '../packages/server/src/testing/harness.ts';
import { sleep, Tally } from './lib.ts';

export interface Signer {
  agentId: string;
  token: string;
}

/** A signature a client received: what every invariant is checked against. */
export interface Received {
  agentId: string;
  amount: bigint;
  auditSeq: number;
  signedTransaction: Hex;
}

export interface Answer {
  url: string;
  signer: Signer;
  startedAt: number;
  endedAt: number;
  /** undefined: the connection failed (the daemon died or refused). */
  result?: HttpResult;
}

export interface LoadOptions {
  urls: () => readonly string[];
  signers: readonly Signer[];
  concurrency: number;
  amount: bigint;
  /** Shared nonce source so every request is a distinct transaction. */
  nextNonce: () => number;
  received: Received[];
  /** Called for every answer; the part decides whether it is acceptable. */
  onAnswer?: (answer: Answer) => void;
}

export interface RunningLoad {
  statuses: Tally;
  stop(): Promise<void>;
}

/** `concurrency` clients, each sending one USDC transfer after another until stop(). */
export function startLoad(o: LoadOptions): RunningLoad {
  let stopped = false;
  const statuses = new Tally();
  let turn = 0;
  const worker = async () => {
    while (!stopped) {
      const i = turn++;
      const urls = o.urls();
      const url = urls[i % urls.length]!;
      const signer = o.signers[i % o.signers.length]!;
      const startedAt = performance.now();
      let result: HttpResult | undefined;
      try {
        result = await httpJson(url, 'POST', '/v1/sign/transaction', { token: signer.token, body: usdcTransfer(ALICE, o.amount, o.nextNonce()) });
      } catch {
        result = undefined;
      }
      const endedAt = performance.now();
      statuses.add(result ? `${result.status}${result.body?.error ? `/${result.body.error.code}` : ''}` : 'network');
      if (result?.status === 200 && result.body?.signedTransaction) {
        o.received.push({ agentId: signer.agentId, amount: o.amount, auditSeq: result.body.auditSeq, signedTransaction: result.body.signedTransaction });
      }
      o.onAnswer?.({ url, signer, startedAt, endedAt, ...(result ? { result } : {}) });
      if (!result) await sleep(5);
    }
  };
  const workers = Array.from({ length: o.concurrency }, worker);
  return {
    statuses,
    async stop() {
      stopped = true;
      await Promise.all(workers);
    },
  };
}
