// A rate limit counts one kind of series: per destination, per origin, per resource or per Nostr kind. Two of them
// together are refused at the second one set, naming both (found by review: always refused at `per_origin`, a
// field the document did not have, and without naming per_nostr_kind).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startHarness, type Harness } from './testing/harness.ts';

let h: Harness;
before(async () => { h = await startHarness({ store: 'sqlite' }); });
after(async () => h.close());

for (const [first, second] of [['per_destination', 'per_nostr_kind'], ['per_destination', 'per_resource'], ['per_origin', 'per_nostr_kind']] as const) {
  test(`rate_limit with ${first} and ${second} is refused at rules[0].${second}, naming both`, async () => {
    const source = `version: 1\nrules:\n  - { name: notes, type: rate_limit, max: 3, window: 1m, scope: agent, ${second}: true, ${first}: true }\n`;
    const res = await h.admin('POST', '/v1/policies/validate', { source });
    assert.equal(res.status, 200);
    assert.equal(res.body.valid, false);
    assert.equal(res.body.error.code, 'invalid_policy');
    const issues = res.body.error.details.issues as { path: string; message: string }[];
    assert.equal(issues.length, 1, JSON.stringify(issues));
    assert.equal(issues[0]!.path, `rules[0].${second}`);
    assert.match(issues[0]!.message, new RegExp(`${second} cannot be combined with ${first}`));
  });
}
