// The webhook receiver docs/operations.md shows (the js block after its `receiver.mjs (tested)` marker), for the
// tests that run it as written.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

const DOC = new URL('../../../../docs/operations.md', import.meta.url);

export function receiverFromDocs(): string {
  const text = readFileSync(DOC, 'utf8');
  const at = text.indexOf('<!-- receiver.mjs (tested) -->');
  assert.ok(at > 0, 'docs/operations.md marks its receiver');
  const block = /```js\n([\s\S]*?)```/.exec(text.slice(at));
  assert.ok(block, 'a js block follows the marker');
  return block[1]!;
}
