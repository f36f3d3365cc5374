/**
 * Released signatures (core/ports/released-signatures.ts), part of the store contract: a row round-trips byte for
 * byte (ECDSA with its recovery id, BIP-340, several in finalize order), the first writer wins (a second keep of the
 * same audit entry returns the first row, unchanged), and concurrent keeps of one entry, on one instance or on
 * several (checkConcurrentKeeps, PostgreSQL), all return the same row.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { ProducedSignature, ReleasedSignatures, Store } from '@airlock/core';

const ecdsa = (recovery: number): ProducedSignature => ({ compact: Uint8Array.from(randomBytes(64)), recovery });
const schnorr = (): ProducedSignature => ({ schnorr: Uint8Array.from(randomBytes(64)) });
const released = (auditSeq: number, signatures: ProducedSignature[]): ReleasedSignatures => ({ auditSeq, digest: randomBytes(32).toString('hex'), signatures, createdAt: 1_700_000_000_000 + auditSeq });

/** `stores[i % n]` keeps a different candidate for the same entry, all at once: every answer is one and the same row. */
export async function checkConcurrentKeeps(stores: Store[], auditSeq: number, attempts = 24): Promise<void> {
  const candidates = Array.from({ length: attempts }, () => released(auditSeq, [ecdsa(1)]));
  const answers = await Promise.all(candidates.map((c, i) => stores[i % stores.length]!.keepReleasedSignatures(c)));
  const stored = await stores[0]!.getReleasedSignatures(auditSeq);
  assert.ok(stored && candidates.some((c) => c.digest === stored.digest), 'the stored row is one of the candidates');
  for (const a of answers) assert.deepEqual(a, stored, 'every writer is answered with the stored row');
}

export function runReleasedSignatureStoreContract(fresh: () => Promise<Store>): void {
  test('released signatures: round-trip byte for byte; the first writer wins; concurrent keeps all answer the stored row', async () => {
    const store = await fresh();
    assert.equal(await store.getReleasedSignatures(41), undefined);
    const first = released(41, [ecdsa(0)]);
    assert.deepEqual(await store.keepReleasedSignatures(first), first);
    assert.deepEqual(await store.getReleasedSignatures(41), first);

    // A second writer for the same entry (another instance answering the same retry) gets the first row back.
    const second = released(41, [ecdsa(1)]);
    assert.deepEqual(await store.keepReleasedSignatures(second), first);
    assert.deepEqual(await store.getReleasedSignatures(41), first, 'the first row is unchanged');

    // Several signatures (a PSBT's inputs), ECDSA and BIP-340 mixed, in order; an entry past 2^32.
    const psbt = released(2 ** 40 + 7, [ecdsa(1), schnorr(), ecdsa(0)]);
    assert.deepEqual(await store.keepReleasedSignatures(psbt), psbt);
    assert.deepEqual(await store.getReleasedSignatures(2 ** 40 + 7), psbt);
    assert.equal(await store.getReleasedSignatures(42), undefined);

    await checkConcurrentKeeps([store], 99);
  });
}
