// The fuzz targets of part 4. Each runs `numRuns` fast-check cases and judges every outcome: success
// must be a well-formed result, failure must be an AirlockError with a documented, non-internal code.
// `progress[0]` counts started cases, so the parent can tell a hang from slow progress.
import fc from 'fast-check';
import { bytesToHex } from 'viem';
import { decodeMessageRequest, decodeTransactionRequest, decodeTypedDataRequest } from '@airlock/chains';
import { AirlockError, ERROR_CODES, compilePolicy, parsePolicyText, type DecodedRequest } from '@airlock/core';
import { stringify as toYaml } from 'yaml';
import { messageSeeds, mutantsOf, policySeeds, transactionSeeds, typedDataSeeds } from './corpus.ts';
import { fuzzHttp } from './http.ts';

export interface TargetResult {
  cases: number;
  accepted: number;
  codes: Record<string, number>;
  failure?: string;
}

export type Target = (numRuns: number, seed: number, progress: Int32Array) => Promise<TargetResult>;

const SIGNER = { address: '0x5555555555555555555555555555555555555555' };

/** Judges one thrown value; returns its code or throws a description of the violation. */
export function judgeError(e: unknown): string {
  if (!(e instanceof AirlockError)) throw new Error(`threw a non-Airlock error: ${e instanceof Error ? e.stack : String(e)}`);
  if (!(e.code in ERROR_CODES)) throw new Error(`undocumented error code ${e.code}`);
  if (e.code === 'internal') throw new Error(`internal error: ${e.cause instanceof Error ? e.cause.stack : String(e.cause)}`);
  return e.code;
}

function checkDecoded(d: DecodedRequest): void {
  if (!(d.digest instanceof Uint8Array) || d.digest.length !== 32) throw new Error('decoded digest is not 32 bytes');
  for (const s of d.intent.spends) {
    if (typeof s.amount !== 'bigint' || s.amount < 0n) throw new Error(`spend amount out of range: ${String(s.amount)}`);
  }
  if (!/^eip155:[1-9]\d*$/.test(d.intent.chain)) throw new Error(`intent chain ${d.intent.chain}`);
}

/** Runs a synchronous judge over an arbitrary with fast-check and collects the figures. */
async function runSync<T>(arb: fc.Arbitrary<T>, judge: (input: T) => boolean, numRuns: number, seed: number, progress: Int32Array): Promise<TargetResult> {
  const codes: Record<string, number> = {};
  let accepted = 0;
  const property = fc.property(arb, (input) => {
    Atomics.add(progress, 0, 1);
    try {
      if (judge(input)) accepted++;
    } catch (e) {
      if (e instanceof Error && /^(threw a non-Airlock|undocumented|internal error|decoded|spend amount|intent chain|not deterministic|compiled)/.test(e.message)) throw e;
      const code = judgeError(e);
      codes[code] = (codes[code] ?? 0) + 1;
    }
    return true;
  });
  const details = fc.check(property, { numRuns, seed, endOnFailure: true });
  return { cases: details.numRuns, accepted, codes, ...(details.failed ? { failure: `${String(details.errorInstance)}\ncounterexample: ${brief(details.counterexample)}\nseed ${seed} path ${details.counterexamplePath}` } : {}) };
}

const brief = (v: unknown) => {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 600 ? `${s.slice(0, 600)}...` : s;
};

/** A decoder target: accepted input decodes the same twice (decoding is pure) into a well-formed request. */
function decoderTarget(seeds: unknown[], decode: (p: unknown) => DecodedRequest): Target {
  return (numRuns, seed, progress) => runSync(mutantsOf(seeds), (payload) => {
    const a = decode(payload);
    checkDecoded(a);
    if (bytesToHex(decode(payload).digest) !== bytesToHex(a.digest)) throw new Error('not deterministic: two decodes gave two digests');
    return true;
  }, numRuns, seed, progress);
}

/** Policy text: YAML of mutated documents, raw YAML/JSON fragments and random text, through parse + compile. */
const policyText: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: mutantsOf(policySeeds).map((doc) => toYaml(doc)) },
  { weight: 2, arbitrary: mutantsOf(policySeeds).map((doc) => JSON.stringify(doc) ?? 'null') },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 200 }) },
  { weight: 1, arbitrary: fc.constantFrom(
    'a: &a [*a]', 'a: &x [1,2]\nb: [*x,*x,*x,*x,*x,*x,*x,*x,*x]\nc: [*b,*b,*b,*b,*b,*b,*b,*b,*b]', '!!js/function "x"', '%YAML 9.9\n---\n', '---\n---\n', '? [a]\n: b',
    'version: 1\nrules: !!set {a}', `version: 1\nrules:\n${'  - {name: x, type: allow}\n'.repeat(3)}`, 'version: 1e999', '<<: *undefined', '\t', '{"version":1,"rules":[{"type":"budget","max":"1e999"}]}',
  ) },
);

export const TARGETS: Record<string, Target> = {
  'decode-transaction': decoderTarget(transactionSeeds, (p) => decodeTransactionRequest(p, SIGNER)),
  'decode-typed-data': decoderTarget(typedDataSeeds, (p) => decodeTypedDataRequest(p, SIGNER)),
  'decode-message': decoderTarget(messageSeeds, (p) => decodeMessageRequest(p, SIGNER)),
  policy: (numRuns, seed, progress) => runSync(policyText, (text) => {
    const compiled = compilePolicy(parsePolicyText(text));
    if (typeof compiled.hash !== 'string' || !Array.isArray(compiled.rules)) throw new Error('compiled policy is malformed');
    return true;
  }, numRuns, seed, progress),
  http: fuzzHttp,
};
