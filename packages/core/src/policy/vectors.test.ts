// Runs the policy vectors in packages/core/test/vectors/policy/*.json (format: that folder's README.md).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Intent } from '../intent.ts';
import type { SessionScope } from '../ports/store.ts';
import type { Layer } from './decision.ts';
import { decide, input, intent, layer } from './testing/fixtures.ts';
import { sessionScopeLayer, type PolicyLayer } from './layers.ts';

const dir = new URL('../../test/vectors/policy/', import.meta.url).pathname;

interface VectorCase {
  name: string;
  layers: ({ layer: Exclude<Layer, 'session'>; policy: unknown; label?: string } | { layer: 'session'; scope: SessionScope })[];
  intent: Record<string, unknown>;
  agentId?: string;
  sessionId?: string;
  nowMs?: number;
  ledger?: Record<string, { amount?: string; count?: number }>;
  expect: { decision: string; codes: string[]; rules?: string[]; allowedBy?: string[]; policyVersion?: string; limit?: string; used?: string; requested?: string };
}

const big = (v: unknown) => (v === undefined ? undefined : BigInt(v as string));

function toIntent(raw: Record<string, any>): Intent {
  const out: Record<string, any> = { ...raw };
  if (raw.spends) out.spends = raw.spends.map((s: any) => ({ ...s, amount: BigInt(s.amount) }));
  if (raw.approvals) out.approvals = raw.approvals.map((a: any) => ({ ...a, amount: BigInt(a.amount) }));
  if (raw.fees) out.fees = Object.fromEntries(Object.entries(raw.fees).map(([k, v]) => [k, big(v)]));
  if (raw.call?.args) {
    out.call = { ...raw.call, args: Object.fromEntries(Object.entries(raw.call.args).map(([k, v]) => [k, typeof v === 'string' && /^\d+n$/.test(v) ? BigInt(v.slice(0, -1)) : v])) };
  }
  return intent({ summary: 'vector', ...out } as Partial<Intent>);
}

const files = readdirSync(dir).filter((f) => f.endsWith('.json')).sort();

test('policy vector files exist', () => assert.ok(files.length >= 3));

for (const file of files) {
  const { cases } = JSON.parse(readFileSync(join(dir, file), 'utf8')) as { cases: VectorCase[] };
  for (const c of cases) {
    test(`${file}: ${c.name}`, () => {
      const layers: PolicyLayer[] = c.layers.map((l) => (l.layer === 'session' ? sessionScopeLayer(l.scope, c.sessionId ?? 'ses_1') : layer(l.layer, l.policy, l.label)));
      const totals = Object.fromEntries(Object.entries(c.ledger ?? {}).map(([k, t]) => [k, { amount: big(t.amount) ?? 0n, count: t.count ?? 0 }]));
      const d = decide(layers, input(toIntent(c.intent), { agentId: c.agentId ?? 'ag_1', sessionId: c.sessionId ?? 'ses_1', ...(c.nowMs !== undefined && { nowMs: c.nowMs }) }), totals);
      const { expect } = c;
      assert.equal(d.decision, expect.decision, JSON.stringify(d.violations));
      assert.deepEqual(d.violations.map((v) => v.code), expect.codes);
      if (expect.rules) assert.deepEqual(d.violations.map((v) => v.rule), expect.rules);
      if (expect.allowedBy) assert.deepEqual(d.allowedBy, expect.allowedBy);
      if (expect.policyVersion) assert.equal(d.policyVersion, expect.policyVersion);
      for (const key of ['limit', 'used', 'requested'] as const) if (expect[key] !== undefined) assert.equal(d.violations[0]?.[key], expect[key], key);
    });
  }
}
