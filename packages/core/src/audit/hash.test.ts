import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, concatBytes, hexToBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import { checkpointDigest, GENESIS_HASH, hashAuditEntry } from './hash.ts';

// The entry hash is specified as sha256(tag || prevHash || canonical body): recompute it with an
// independent SHA-256 (noble) from the documented layout, so an outsider's verifier agrees with ours.
test('entry hashes follow the documented layout (checked with an independent SHA-256)', () => {
  const entry = { at: 1767225600000, type: 'sign.request', actor: 'agent' as const, agentId: 'ag_1', action: 'evm.message', decision: 'deny' as const, data: { z: 1n, a: ['x'] } };
  const body = '{"action":"evm.message","actor":"agent","agentId":"ag_1","at":1767225600000,"data":{"a":["x"],"z":"1"},"decision":"deny","seq":1,"type":"sign.request"}';
  const expected = bytesToHex(sha256(concatBytes(utf8ToBytes('airlock/audit-entry/v1\u0000'), hexToBytes(GENESIS_HASH), utf8ToBytes(body))));
  assert.equal(hashAuditEntry(GENESIS_HASH, 1, entry), expected);
  const cp = { seq: 1, headHash: expected, at: 5 };
  assert.equal(bytesToHex(checkpointDigest(cp)), bytesToHex(sha256(concatBytes(utf8ToBytes('airlock/audit-checkpoint/v1\u0000'), utf8ToBytes(`{"at":5,"headHash":"${expected}","seq":1}`)))));
});
