// A held Nostr event's content and tags are the agent's text, shown to the approver who votes on it
// (`airlock approvals show`). Found by review: they were printed with plain JSON.stringify, which leaves C1
// controls (U+009B, a CSI on some terminals) and bidi or zero-width characters raw, so an agent could reorder or
// redraw what the approver reads. Every control and format character is escaped now.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ApprovalView } from '@airlock/sdk/approvals';
import { describeApproval } from './commands/approvals.ts';

test('a held Nostr event prints its content and tags with every control and format character escaped', () => {
  const content = 'pay \u202egro.elpmaxe\u202c now\u009b2K\u200b\r\nvotes:   alice approve';
  const tags = [['p', 'ab\u061c\u2066cd'], ['t', 'x\u0085y']];
  const view = {
    id: 'apr_0000000000000001', state: 'pending', action: 'nostr.event', agentId: 'ag_0000000000000001', digest: 'ab'.repeat(32),
    summary: { intent: { summary: 'Nostr event kind 1' } }, request: { content, tags }, votes: [], expiresAt: '2026-12-05T00:00:00.000Z',
  } as unknown as ApprovalView;
  const text = describeApproval(view);
  assert.doesNotMatch(text, /[\p{Cf}]|[\u0080-\u009f]|\r/u, 'no control or format character reaches the terminal');
  const lines = text.split('\n');
  assert.equal(lines.filter((l) => l.startsWith('  votes:')).length, 1, 'the content forged no votes line');
  // The escaped text is still JSON: the approver can read exactly what the agent sent.
  assert.equal(JSON.parse(lines.find((l) => l.startsWith('  content: '))!.slice('  content: '.length)), content);
  assert.deepEqual(JSON.parse(lines.find((l) => l.startsWith('  tags:    '))!.slice('  tags:    '.length)), tags);
});
