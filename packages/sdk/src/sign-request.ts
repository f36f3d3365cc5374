import { randomUUID } from 'node:crypto';
import { AirlockApprovalRequiredError, type AirlockHttp, type Violation } from './http.ts';

/** What a signing endpoint answers: a signature (200), or a pending approval (202). */
export interface SignAnswer {
  signature: `0x${string}`;
  approvalId?: string;
  expiresAt?: string;
  violations?: Violation[];
}

/**
 * Sends one signing request with one idempotency key, reused on transport retries, so a retry is never a
 * second spend. Only transport failures are retried: every answer from Airlock, refusals included, is final.
 * A 202 waits up to `approvalWaitMs` for a human, then throws AirlockApprovalRequiredError.
 * `key`: the caller's own Idempotency-Key, to make a request it sends again later (another process) the same one.
 */
export async function signWithRetry<T extends SignAnswer>(http: AirlockHttp, path: string, payload: unknown, approvalWaitMs: number, key: string = randomUUID()): Promise<T> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const send = () => http.request<T>('POST', path, payload, { 'idempotency-key': key });
      const res = await send();
      if (res.status === 202) return await waitForApproval<T>(http, res.body, approvalWaitMs, send);
      return res.body;
    } catch (e) {
      if (!(e instanceof TypeError)) throw e;
      lastError = e;
      await new Promise((r) => setTimeout(r, 100 * 2 ** attempt));
    }
  }
  throw lastError;
}

/**
 * `resend`: the request again under its Idempotency-Key. A poll that ends on an approval granted without a result
 * (the long poll waits for the result, so its wait ran out: usually the instance that granted it failed before its
 * signature left, rarely the signature is still being made) sends it: Airlock then releases the granted signature
 * as a replay, charged nothing again. Asking under a new key instead would open a second approval of the same request.
 */
async function waitForApproval<T extends SignAnswer>(http: AirlockHttp, pending: T, waitMs: number, resend: () => Promise<{ status: number; body: T }>): Promise<T> {
  const id = pending.approvalId!;
  const deadline = Date.now() + waitMs;
  while (Date.now() < deadline) {
    // Long poll: Airlock answers as soon as the approval is decided (and signed), or when `wait` runs out.
    const { body } = await http.request<{ state: string; result?: T }>('GET', `/v1/approvals/${encodeURIComponent(id)}${approvalWaitQuery(deadline)}`);
    if (body.state === 'approved' && body.result) return body.result;
    if (body.state === 'approved') {
      const again = await resend();
      if (again.status === 200) return again.body;
      continue;
    }
    if (body.state !== 'pending') break;
  }
  throw new AirlockApprovalRequiredError(id, pending.expiresAt ?? '', pending.violations ?? []);
}

/** `?wait=<seconds>` for GET /v1/approvals/{id}: what is left until `deadline` (ms), 1 to 60 seconds. */
export function approvalWaitQuery(deadline: number): string {
  return `?wait=${Math.min(60, Math.max(1, Math.ceil((deadline - Date.now()) / 1000)))}`;
}
