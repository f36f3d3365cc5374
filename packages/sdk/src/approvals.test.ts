// The SDK signs the bytes the daemon verifies: its canonical vote and view equal core's RFC 8785 ones.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ed25519 } from '@noble/curves/ed25519.js';
import { hexToBytes } from '@noble/hashes/utils.js';
import { approvalViewBytes, approvalVoteBytes } from '@airlock/core';
import { approvalViewMessage, approvalVoteMessage, approverPublicKey, generateApproverKey, signApprovalView, signApprovalVote } from './approvals.ts';

test('the vote and view messages are core\'s canonical JSON, with and without a comment (escapes and non-ASCII included)', () => {
  const base = { approvalId: 'apr_0123456789abcdef', digest: 'ab'.repeat(32), decision: 'approve' as const, approver: 'alice', at: '2025-01-31T12:00:00.000Z' };
  for (const vote of [base, { ...base, comment: 'invoice "42" \u2014 ok\n\u00e9' }, { ...base, decision: 'reject' as const, comment: '' }]) {
    assert.deepEqual(approvalVoteMessage(vote), approvalVoteBytes(vote));
  }
  const view = { approvalId: base.approvalId, approver: 'bob', at: base.at };
  assert.deepEqual(approvalViewMessage(view), approvalViewBytes(view));
});

test('signApprovalVote signs what it returns; the signature verifies under the approver key and no other', () => {
  const key = generateApproverKey();
  assert.equal(approverPublicKey(key.secretKey), key.publicKey);
  const vote = signApprovalVote({ secretKey: key.secretKey, approvalId: 'apr_1', digest: 'CD'.repeat(32), decision: 'reject', approver: 'alice', comment: 'no' });
  assert.equal(vote.digest, 'cd'.repeat(32), 'the digest is signed in lowercase hex, as the daemon stores it');
  assert.equal(new Date(vote.at).toISOString(), vote.at);
  const message = approvalVoteBytes({ approvalId: 'apr_1', ...vote });
  assert.ok(ed25519.verify(hexToBytes(vote.signature), message, hexToBytes(key.publicKey)));
  assert.ok(!ed25519.verify(hexToBytes(vote.signature), message, hexToBytes(generateApproverKey().publicKey)));
  assert.ok(!ed25519.verify(hexToBytes(vote.signature), approvalVoteBytes({ approvalId: 'apr_2', ...vote }), hexToBytes(key.publicKey)), 'bound to the approval id');
  const view = signApprovalView({ secretKey: key.secretKey, approvalId: 'apr_1', approver: 'alice' });
  assert.ok(ed25519.verify(hexToBytes(view.signature), approvalViewBytes({ approvalId: 'apr_1', approver: 'alice', at: view.at }), hexToBytes(key.publicKey)));
});
