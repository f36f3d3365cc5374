// An approver is looked up by id or by name (WHERE id = ? OR name = ?), so a name shaped like an approver id
// (`apv_` and 16 hex digits) could stand for another approver: found by review, an approver named after a leaked
// approver's id made `POST /v1/approvers/<that id>/disable` read either row, and the key the operator meant to
// revoke could stay active. Such a name is refused when the approver is registered, as an agent named like an agent
// id is.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { generateApproverKey } from '@airlock/sdk/approvals';
import { startHarness, type Harness } from './testing/harness.ts';

describe('approver names shaped like an approver id', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ store: 'sqlite' });
  });
  after(async () => h.close());

  const register = (name: string) => h.admin('POST', '/v1/approvers', { name, publicKey: generateApproverKey().publicKey, groups: ['treasury'] });

  test("a name that is another approver's id is refused (invalid_request) and nothing is registered; disabling by that id disables that approver", async () => {
    const leaked = await register('treasurer');
    assert.equal(leaked.status, 201, JSON.stringify(leaked.body));
    const leakedId = leaked.body.id as string;
    assert.match(leakedId, /^apv_[0-9a-f]{16}$/);

    const impostor = await register(leakedId);
    assert.equal(impostor.status, 400, JSON.stringify(impostor.body));
    assert.equal(impostor.body.error.code, 'invalid_request');
    assert.match(impostor.body.error.message, /form of an approver id/);
    // Any id-shaped name, not only one taken already: the id it looks like may be handed out later.
    const unused = await register('apv_0123456789abcdef');
    assert.deepEqual([unused.status, unused.body.error?.code], [400, 'invalid_request']);
    const approvers = (await h.admin('GET', '/v1/approvers')).body.approvers as { id: string; name: string; status: string }[];
    assert.deepEqual(approvers.map((a) => a.name), ['treasurer'], 'nothing else registered');
    assert.deepEqual((await h.admin('GET', '/v1/audit?type=approver.added')).body.entries.length, 1);

    const disabled = await h.admin('POST', `/v1/approvers/${leakedId}/disable`);
    assert.equal(disabled.status, 200, JSON.stringify(disabled.body));
    assert.deepEqual([disabled.body.id, disabled.body.name, disabled.body.status], [leakedId, 'treasurer', 'disabled']);

    // Names that only resemble an id are still names.
    for (const name of ['apv_0123456789abcde', 'apv-0123456789abcdef', 'apv_0123456789abcdef0']) assert.equal((await register(name)).status, 201, name);
  });
});
