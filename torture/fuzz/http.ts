// HTTP fuzz target: random methods, paths, headers, content types and bodies (mutated valid requests,
// random JSON, random text, oversized bodies) against the real app in-process. Every answer must be JSON;
// every error a documented code with its own status and never `internal`; a signature only for a request
// the decoder accepts, over exactly the digest the decoder computes.
import fc from 'fast-check';
import { bytesToHex } from 'viem';
import { decodeMessageRequest, decodeTransactionRequest, decodeTypedDataRequest } from '@airlock/chains';
import { AirlockError, ERROR_CODES } from '@airlock/core';
import { createApp } from '../../packages/server/src/http/app.ts';
import { AirlockHolder } from '../../packages/server/src/http/holder.ts';
import { ALICE, provisionAgent, startHarness, usdcPolicy, usdcTransfer } from '../../packages/server/src/testing/harness.ts';
import { signedTransactionDigest } from '../../packages/server/src/testing/processes.ts';
import { messageSeeds, mutantsOf, transactionSeeds, typedDataSeeds } from './corpus.ts';
import type { Target, TargetResult } from './targets.ts';

const CASE_TIMEOUT_MS = 5_000;
const SIGN_ROUTES: Record<string, (p: unknown, address: string) => Uint8Array> = {
  '/v1/sign/transaction': (p, address) => decodeTransactionRequest(p, { address }).digest,
  '/v1/sign/typed-data': (p, address) => decodeTypedDataRequest(p, { address }).digest,
  '/v1/sign/message': (p, address) => decodeMessageRequest(p, { address }).digest,
};

export const fuzzHttp: Target = async (numRuns, seed, progress): Promise<TargetResult> => {
  const h = await startHarness({ store: 'sqlite' });
  try {
    const internal: string[] = [];
    // No per-session rate limit: thousands of cases on one session must reach decoding, policy and signing.
    const app = createApp(new AirlockHolder(h.airlock), { bodyLimitBytes: h.config.bodyLimitBytes, sessionRate: { perSecond: 0, burst: 0 }, logInternalError: (e) => void internal.push(String(e.cause instanceof Error ? e.cause.stack : e.cause)) });
    // A generous policy so mutated-but-valid requests really reach the signer.
    const { agent, token } = await provisionAgent(h, { policy: usdcPolicy({ perRequest: (10n ** 30n).toString(), daily: (10n ** 40n).toString() }) });
    const other = await provisionAgent(h, {});
    await h.admin('POST', `/v1/sessions/${other.session.id}/revoke`);
    const approvals = (await h.admin('GET', '/v1/approvals?state=all')).body.approvals;

    // Never the fuzzed agent itself: a random admin call could freeze it and end all signing coverage.
    const ids = fc.constantFrom(other.agent.id, other.agent.name, other.session.id, 'fleet', 'apr_0000', approvals[0]?.id ?? 'apr_x', '..', '%2e%2e', '%00', 'x'.repeat(300), '');
    const paths = fc.oneof(
      { weight: 6, arbitrary: fc.constantFrom('/v1/sign/transaction', '/v1/sign/typed-data', '/v1/sign/message', '/v1/dry-run') },
      { weight: 3, arbitrary: fc.tuple(fc.constantFrom('/v1/agents/:id', '/v1/agents/:id/freeze', '/v1/agents/:id/sessions', '/v1/policies/:id', '/v1/policies/:id/diff', '/v1/policies/:id/versions', '/v1/approvals/:id', '/v1/approvals/:id/approve', '/v1/sessions/:id/revoke'), ids).map(([p, id]) => p.replace(':id', id)) },
      { weight: 2, arbitrary: fc.constantFrom('/v1/health', '/v1/session', '/v1/agents', '/v1/audit', '/v1/audit/head', '/v1/audit/checkpoints', '/v1/approvals', '/v1/sessions', '/v1/policies/validate', '/v1/policies/dry-run', '/v1/unseal', '/v1/openapi.json') },
      { weight: 2, arbitrary: fc.tuple(fc.constantFrom('/v1/audit', '/v1/agents', '/v1/approvals', '/v1/sessions', '/v1/policies/fleet', '/v1/policies/fleet/diff'), fc.dictionary(fc.constantFrom('limit', 'after', 'from', 'to', 'agent', 'decision', 'type', 'status', 'state', 'all', 'version'), fc.oneof(fc.string({ maxLength: 12 }), fc.integer().map(String), fc.constantFrom('-1', '0', '1e9', '2024-01-01', 'NaN', 'true', '%ff')), { maxKeys: 3 }))
        .map(([p, q]) => `${p}?${Object.entries(q).map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&')}`) },
      { weight: 1, arbitrary: fc.webPath().map((p) => (p.startsWith('/') ? p : `/${p}`)) },
    );
    const auth = fc.constantFrom<string | undefined>(`Bearer ${token}`, `Bearer ${token}`, `Bearer ${h.adminToken}`, `Bearer ${other.token}`, undefined, 'Bearer ', `bearer ${token}`, `Bearer ${token}x`, `Bearer ${token.slice(0, -1)}`, `Bearer ${h.adminToken.slice(0, -2)}AA`, 'Basic YTpi', `Bearer adm_${'A'.repeat(43)}`, `Bearer ses_${'0'.repeat(16)}.${'A'.repeat(43)}`, `Bearer ${'x'.repeat(5000)}`);
    const contentType = fc.constantFrom<string | undefined>('application/json', 'application/json', undefined, 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/json; charset=utf-16', '*/*', 'application/yaml');
    const body = fc.oneof(
      { weight: 6, arbitrary: mutantsOf([...transactionSeeds, ...typedDataSeeds, ...messageSeeds, { action: 'evm.transaction', payload: transactionSeeds[0] }]).map((v) => JSON.stringify(v) ?? 'null') },
      { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 300 }) },
      { weight: 1, arbitrary: fc.constantFrom('', '{', '[]', 'null', '"x"', '{"a":' + '['.repeat(5000), '{"__proto__":{"admin":true}}', '\uFEFF{}', '{"chainId":8453,"transaction":{}}'.repeat(2)) },
      { weight: 1, arbitrary: fc.integer({ min: 200_000, max: 400_000 }).map((n) => JSON.stringify({ chainId: 8453, message: 'x'.repeat(n) })) },
    );
    const idempotencyKey = fc.option(fc.oneof(fc.constantFrom('k1', 'k2', 'a'.repeat(129), 'has space', 'ü', ''), fc.string({ maxLength: 20 })), { nil: undefined });
    // Distinct client addresses: the auth-failure limiter is per address and would otherwise answer 429 to everything.
    const client = fc.nat(1_000_000);
    const anything = fc.record({
      method: fc.constantFrom('POST', 'POST', 'POST', 'GET', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD'),
      path: paths,
      auth,
      contentType,
      idempotencyKey,
      body: fc.option(body, { nil: undefined, freq: 4 }),
      client,
    });
    // Half the cases are well-addressed signing requests with a valid session: mutants of the matching
    // request type, so many get past authentication and deep into decoding, policy and signing.
    const signing = fc.oneof(
      ...([['/v1/sign/transaction', transactionSeeds], ['/v1/sign/typed-data', typedDataSeeds], ['/v1/sign/message', messageSeeds]] as const).map(([path, seeds]) =>
        fc.record({
          method: fc.constant('POST'), path: fc.constant(path), auth: fc.constant<string | undefined>(`Bearer ${token}`), contentType: fc.constant<string | undefined>('application/json'),
          idempotencyKey, body: mutantsOf(seeds).map((v) => JSON.stringify(v) ?? 'null') as fc.Arbitrary<string | undefined>, client,
        })),
    );
    // And requests the policy allows, with random amounts, nonces and keys: signatures to check, replays to hit.
    const allowed = fc.record({
      method: fc.constant('POST'), path: fc.constant('/v1/sign/transaction'), auth: fc.constant<string | undefined>(`Bearer ${token}`), contentType: fc.constant<string | undefined>('application/json'),
      idempotencyKey, body: fc.tuple(fc.bigInt({ min: 0n, max: 10n ** 12n }), fc.nat()).map(([amount, nonce]) => JSON.stringify(usdcTransfer(ALICE, amount, nonce))) as fc.Arbitrary<string | undefined>, client,
    });
    const request = fc.oneof({ weight: 4, arbitrary: anything }, { weight: 4, arbitrary: signing }, { weight: 1, arbitrary: allowed });

    const codes: Record<string, number> = {};
    let accepted = 0;
    const property = fc.asyncProperty(request, async (r) => {
      Atomics.add(progress, 0, 1);
      const headers = new Headers();
      if (r.auth !== undefined) headers.set('authorization', r.auth);
      if (r.contentType !== undefined) headers.set('content-type', r.contentType);
      if (r.idempotencyKey !== undefined) {
        try {
          headers.set('idempotency-key', r.idempotencyKey);
        } catch {
          // Not a legal header value: a real client could not send it either.
        }
      }
      const hasBody = r.body !== undefined && r.method !== 'GET' && r.method !== 'HEAD';
      const env = { incoming: { socket: { remoteAddress: `10.${r.client >> 16}.${(r.client >> 8) & 255}.${r.client & 255}` } } };
      let res: Response;
      try {
        res = await app.request(r.path, { method: r.method, headers, ...(hasBody ? { body: r.body } : {}) }, env);
      } catch (e) {
        throw new Error(`the app threw instead of answering: ${e instanceof Error ? e.stack : String(e)}`);
      }
      if (internal.length) throw new Error(`internal error logged: ${internal[0]}`);
      const text = await res.text();
      if (r.method === 'HEAD') return true;
      let json: any;
      try {
        json = JSON.parse(text);
      } catch {
        throw new Error(`answer ${res.status} is not JSON: ${text.slice(0, 200)}`);
      }
      if (res.status >= 400) {
        const code = json?.error?.code;
        if (!(code in ERROR_CODES)) throw new Error(`undocumented error code ${code} (status ${res.status})`);
        if (code === 'internal') throw new Error(`500 internal for ${r.method} ${r.path}`);
        if (ERROR_CODES[code as keyof typeof ERROR_CODES].status !== res.status) throw new Error(`${code} answered with status ${res.status}, documented ${ERROR_CODES[code as keyof typeof ERROR_CODES].status}`);
        if (json.signature || json.signedTransaction) throw new Error(`error ${code} carries a signature`);
        codes[code] = (codes[code] ?? 0) + 1;
        return true;
      }
      codes[String(res.status)] = (codes[String(res.status)] ?? 0) + 1;
      if (json?.signature || json?.signedTransaction) {
        // A signature: the request must be one the decoder accepts, and the signature over its digest.
        const route = SIGN_ROUTES[new URL(r.path, 'http://x').pathname];
        if (!route || !hasBody) throw new Error(`signature from ${r.method} ${r.path}`);
        let digest: string;
        try {
          digest = bytesToHex(route(JSON.parse(r.body!), agent.address));
        } catch (e) {
          throw new Error(`signed a request the decoder rejects (${e instanceof AirlockError ? `${e.code}: ${e.message}` : String(e)}): ${r.body!}`);
        }
        if (json.signedTransaction && `0x${signedTransactionDigest(json.signedTransaction)}` !== digest) throw new Error('signed transaction digest differs from the decoded digest');
        accepted++;
      }
      return true;
    });
    const details = await fc.check(property, { numRuns, seed, timeout: CASE_TIMEOUT_MS, endOnFailure: true });
    const counter = details.counterexample ? JSON.stringify(details.counterexample).slice(0, 800) : '';
    return { cases: details.numRuns, accepted, codes, ...(details.failed ? { failure: `${String(details.errorInstance)}\ncounterexample: ${counter}\nseed ${seed} path ${details.counterexamplePath}` } : {}) };
  } finally {
    await h.close();
  }
};
