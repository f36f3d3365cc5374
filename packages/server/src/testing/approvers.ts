// Approvers as the quorum tests use them: registered over the admin API with a key of their own, voting over HTTP
// with a signed vote on the approval's digest.
import assert from 'node:assert/strict';
import { generateApproverKey, signApprovalVote } from '@airlock/sdk/approvals';
import type { Harness } from './harness.ts';

export interface TestApprover {
  name: string;
  secretKey: string;
}

/**
 * `addApprover(group)` registers a new approver in `group` (names `<group>-<label>-<n>`); `vote(who, approvalId)`
 * casts their signed approve, dated by `h.clock` when the harness has one.
 */
export function approverKit(h: () => Harness, label: string) {
  let counter = 0;
  return {
    async addApprover(group: string): Promise<TestApprover> {
      const key = generateApproverKey();
      const name = `${group}-${label}-${++counter}`;
      assert.equal((await h().admin('POST', '/v1/approvers', { name, publicKey: key.publicKey, groups: [group] })).status, 201);
      return { name, secretKey: key.secretKey };
    },
    async vote(who: TestApprover, approvalId: string) {
      const harness = h();
      const { digest } = (await harness.admin('GET', `/v1/approvals/${approvalId}`)).body;
      const at = new Date(harness.clock ? harness.clock.now() : Date.now()).toISOString();
      const body = signApprovalVote({ secretKey: who.secretKey, approvalId, digest, decision: 'approve', approver: who.name, at });
      return harness.call('POST', `/v1/approvals/${approvalId}/votes`, { body });
    },
  };
}
