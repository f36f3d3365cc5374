// `airlock session tree` prints labels an agent wrote (child sessions). Found by review: a label holding CR and ESC
// sequences was printed raw, so a rogue sub-agent could redraw its line as a sibling's, shown revoked, and the
// operator would revoke the wrong session. The server now refuses such labels; one stored before that is still
// listed, and the tree prints it quoted and escaped, on the line of the session it belongs to.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { provisionAgent, startHarness } from '../../server/src/testing/harness.ts';
import { quoted, sessionTree } from './commands/sessions.ts';

test('a label with control and format characters, stored before labels were checked, is printed escaped', async () => {
  const h = await startHarness({});
  try {
    const p = await provisionAgent(h, { actions: ['evm.transaction'] });
    const innocent = await h.call('POST', '/v1/session/children', { token: p.token, body: { label: 'worker-a' } });
    assert.equal(innocent.status, 201);
    const spoof = `\r\x1b[2K├─ ${innocent.body.session.id}  evm.transaction  *  revoked\nx\u009b2K\u202e\u{e0041}`;
    // As a server before the fix stored it: written through the store, the label check being in the service.
    const rogueId = 'ses_rogue0000000000';
    const now = Date.now();
    await h.airlock.store.transaction(async (tx) => {
      await tx.createSession({
        id: rogueId, agentId: p.agent.id, tokenHash: 'ab'.repeat(32), scope: { actions: ['evm.transaction'], chains: [], budgets: [] },
        parentId: p.session.id, createdAt: now, expiresAt: Date.parse(p.session.expiresAt), label: spoof,
      });
    });
    const listed = await h.admin('GET', `/v1/sessions?agent=${p.agent.name}`);
    assert.equal(listed.body.sessions.find((s: any) => s.id === rogueId).label, spoof, 'the API returns it as stored');
    const lines = sessionTree(listed.body.sessions);
    assert.equal(lines.length, 3, lines.join('\n'));
    for (const line of lines) assert.doesNotMatch(line, /[\p{Cc}\p{Cf}]/u, 'no control or format character reaches the terminal');
    const rogueLine = lines.find((l) => l.includes(rogueId))!;
    assert.ok(rogueLine.endsWith(quoted(spoof)), rogueLine);
    assert.ok(rogueLine.includes('"\\r\\u001b[2K├─ '), rogueLine);
    assert.ok(rogueLine.includes('\\nx\\u009b2K\\u202e\\udb40\\udc41"'), rogueLine);
    assert.equal(JSON.parse(quoted(spoof)), spoof, 'still a JSON string literal of the label');
    assert.ok(lines.find((l) => l.includes(innocent.body.session.id))!.endsWith('"worker-a"'));
  } finally {
    await h.close();
  }
});
