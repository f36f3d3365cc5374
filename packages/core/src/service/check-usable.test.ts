// checkUsable names why a credential is dead; the Nostr bunker refuses a dead credential's request with that
// code whatever the request asked (CREDENTIAL_REFUSAL_CODES). The set must name every code checkUsable throws.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AirlockError } from '../errors.ts';
import type { Agent, Session } from '../ports/store.ts';
import { checkUsable, CREDENTIAL_REFUSAL_CODES } from './signing-service.ts';

const now = 1_000_000;
const agent = { id: 'ag_0000000000000001', status: 'active' } as Agent;
const session = { id: 'ses_0000000000000001', agentId: agent.id, expiresAt: now + 60_000 } as Session;

test('every way a credential dies is refused with a code in CREDENTIAL_REFUSAL_CODES, and a live one is not refused', () => {
  const dead: [Agent, Session][] = [
    [agent, { ...session, revokedAt: now - 1 }],
    [agent, { ...session, expiresAt: now }],
    [{ ...agent, status: 'frozen' }, session],
    [{ ...agent, status: 'retired' }, session],
  ];
  const thrown = dead.map(([a, s]) => {
    try {
      checkUsable(a, s, now);
    } catch (e) {
      assert.ok(e instanceof AirlockError);
      return e.code;
    }
    return assert.fail(`not refused: ${a.status}, ${JSON.stringify(s)}`);
  });
  assert.deepEqual(new Set(thrown), CREDENTIAL_REFUSAL_CODES);
  assert.doesNotThrow(() => checkUsable(agent, session, now));
});
