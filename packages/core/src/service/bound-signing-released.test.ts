// The key process's bound signer (BoundSigningGuard) with a key backend that draws a random nonce, as a PKCS#11
// token does: a compromised daemon asking it again and again to sign one allowed decision (directly, or through a
// `sign.replay` entry it appended pointing at it, or many asks at once) gets the bytes released the first time,
// never a second, different valid signature (found by review). The log is held in memory as a store holds it;
// the chain adapter is a stand-in that decodes every payload to the one digest the entry recorded (SoftHSM2 is not
// on every test machine: the real token is exercised in packages/keys/src/pkcs11-backend.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { hexToBytes } from '@noble/hashes/utils.js';
import { canonicalJson } from '../canonical-json.ts';
import { auditLeaf } from '../audit/hash.ts';
import type { VerifiableEntry } from '../audit/log-verifier.ts';
import { leafHashHex } from '../audit/merkle.ts';
import type { ChainAdapter } from '../ports/chain-adapter.ts';
import type { EcdsaSignature, KeyBackend } from '../ports/key-backend.ts';
import type { Agent } from '../ports/store.ts';
import { requestHash } from './tokens.ts';
import { BoundSigningGuard, type BindingReader } from './bound-signing.ts';
import { VerifiedAuditLog, type AuditLogSource } from './verified-audit-log.ts';

const AGENT = '0x' + '11'.repeat(20);
const DIGEST = 'ab'.repeat(32);
const PAYLOAD = { chainId: 1, transaction: { to: '0x' + '22'.repeat(20), nonce: 0 } };

/** Leaves as a store holds them: entry `seq` at leaf seq - 1, hashed from its canonical bytes. */
function memorySource(entries: { type: string; decision: 'allow'; data: Record<string, unknown> }[]): AuditLogSource {
  const rows: VerifiableEntry[] = entries.map((e, i) => {
    const fields = { seq: i + 1, at: 1_000 + i, type: e.type, actor: 'agent' as const, agentId: 'ag_1', action: 'evm.transaction', decision: e.decision };
    const leaf = auditLeaf(fields, canonicalJson(e.data));
    return { ...fields, leafIndex: i, hash: leafHashHex(leaf), hashVersion: 3, leaf };
  });
  return {
    async readAudit(fromSeq, limit) {
      return rows.filter((r) => r.seq >= fromSeq).slice(0, limit).map((r) => ({ ...r, data: {} }));
    },
    async readAuditLeaves(from, limit) {
      return rows.slice(from, from + limit).map((r) => ({ ...r }));
    },
    async readTreeNodes(ids) {
      return ids.map(() => undefined);
    },
  };
}

/** A backend whose every ECDSA signature is fresh random bytes (what a random nonce gives), counting its signings. */
function randomNonceKeys(): KeyBackend & { signings: number } {
  const keys = {
    kind: 'random-nonce',
    deterministic: false,
    signings: 0,
    async getPublicKey() {
      return new Uint8Array(33);
    },
    async signDigest(): Promise<EcdsaSignature> {
      keys.signings++;
      await new Promise((r) => setTimeout(r, 5)); // a token answers later: asks at once overlap
      return { compact: new Uint8Array(randomBytes(64)), recovery: 0 };
    },
  };
  return keys as unknown as KeyBackend & { signings: number };
}

const evmStandIn = {
  namespace: 'eip155',
  actions: ['evm.transaction'],
  signerIsAgentAddress: true,
  derivationPath: () => "m/44'/60'/0'/0/0",
  addressFromPublicKey: () => AGENT,
  decode: () => ({ intent: { action: 'evm.transaction', chain: 'eip155:1', kind: 'native.transfer', from: AGENT, spends: [], approvals: [], summary: '' }, digest: hexToBytes(DIGEST) }),
  finalize: () => {
    throw new Error('not used');
  },
} as unknown as ChainAdapter;

const reader = {
  async getAgent(id: string) {
    return { id, name: 'a', accountIndex: 0, keyIndex: 0, address: AGENT, status: 'active', labels: {}, createdAt: 0, updatedAt: 0 } as Agent;
  },
} as unknown as BindingReader;

function guardOver(keys: KeyBackend): BoundSigningGuard {
  const hashed = requestHash('evm.transaction', PAYLOAD, canonicalJson);
  const source = memorySource([
    { type: 'sign.request', decision: 'allow', data: { intent: { from: AGENT, summary: 's' }, digest: DIGEST, requestHash: hashed } },
    // What a compromised daemon appends to ask again under a fresh seq: a replay pointing at the allow.
    { type: 'sign.replay', decision: 'allow', data: { originalSeq: 1, digest: DIGEST, requestHash: hashed } },
  ]);
  return new BoundSigningGuard({ log: new VerifiedAuditLog(source), reader, keys, adapters: new Map([['eip155', evmStandIn]]) });
}

const ask = (auditSeq: number) => ({ auditSeq, agentId: 'ag_1', action: 'evm.transaction', payload: PAYLOAD });

test('a random-nonce backend: one decision asked again, and through a replay entry, gets the bytes released first', async () => {
  const keys = randomNonceKeys();
  const guard = guardOver(keys);
  const first = await guard.sign(ask(1));
  const again = await guard.sign(ask(1));
  const replayed = await guard.sign(ask(2));
  assert.deepEqual(again.signatures, first.signatures);
  assert.deepEqual(replayed.signatures, first.signatures);
  assert.equal(keys.signings, 1);
});

test('a random-nonce backend: asks at once for one decision share one signing', async () => {
  const keys = randomNonceKeys();
  const guard = guardOver(keys);
  const all = await Promise.all([guard.sign(ask(1)), guard.sign(ask(1)), guard.sign(ask(2))]);
  for (const one of all) assert.deepEqual(one.signatures, all[0]!.signatures);
  assert.equal(keys.signings, 1);
});
