import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { verifyWebhook } from './webhooks.ts';

// Shaped as Airlock issues them: `whsec_` + base64url of 32 bytes (server/src/webhooks/signature.ts).
const whsec = (fill: number) => `whsec_${Buffer.alloc(32, fill).toString('base64url')}`;
const secret = whsec(7);
const body = JSON.stringify({ id: 'evt_1', type: 'alert.loop_guard', seq: 3, data: { resource: 'https://x' } });
const t = 1_800_000_000;
const mac = (key: string, ts: number, b: string) => createHmac('sha256', key).update(`${ts}.${b}`).digest('hex');
const now = t * 1000;

test('a delivery signed as documented verifies (string or bytes body) and gives the parsed event', () => {
  const header = `t=${t},v1=${mac(secret, t, body)}`;
  const ok = verifyWebhook({ secret, signatureHeader: header, body, now });
  assert.deepEqual(ok, { ok: true, event: JSON.parse(body), timestamp: t });
  assert.equal(verifyWebhook({ secret, signatureHeader: header, body: new TextEncoder().encode(body), now }).ok, true);
  assert.equal(verifyWebhook({ secret, signatureHeader: `t=${t}, v1=${'0'.repeat(64)}, v1=${mac(secret, t, body)}`, body, now }).ok, true, 'any v1 may match (overlapping secrets)');
  assert.equal(verifyWebhook({ secret, signatureHeader: `t=${t},v0=zzz,v1=${mac(secret, t, body).toUpperCase()}`, body, now }).ok, true, 'unknown schemes are ignored, hex case too');
});

test('refusals, each with its reason', () => {
  const good = `t=${t},v1=${mac(secret, t, body)}`;
  const cases: [Parameters<typeof verifyWebhook>[0], string][] = [
    [{ secret, signatureHeader: good, body, now: now + 301_000 }, 'stale_timestamp'],
    [{ secret, signatureHeader: good, body, now: now - 301_000 }, 'stale_timestamp'],
    [{ secret, signatureHeader: good, body: body.replace('3', '4'), now }, 'signature_mismatch'],
    [{ secret: whsec(8), signatureHeader: good, body, now }, 'signature_mismatch'],
    [{ secret, signatureHeader: `t=${t + 1},v1=${mac(secret, t, body)}`, body, now }, 'signature_mismatch'],
    [{ secret, signatureHeader: null, body, now }, 'missing_signature'],
    [{ secret, signatureHeader: '  ', body, now }, 'missing_signature'],
    [{ secret, signatureHeader: `v1=${mac(secret, t, body)}`, body, now }, 'malformed_signature'],
    [{ secret, signatureHeader: `t=${t}`, body, now }, 'malformed_signature'],
    [{ secret, signatureHeader: `t=${t},t=${t},v1=${mac(secret, t, body)}`, body, now }, 'malformed_signature'],
    [{ secret, signatureHeader: `t=-1,v1=${mac(secret, t, body)}`, body, now }, 'malformed_signature'],
    [{ secret, signatureHeader: `t=${t},v1=abc`, body, now }, 'malformed_signature'],
    [{ secret, signatureHeader: `t=${t},v1=${mac(secret, t, '[1]')}`, body: '[1]', now }, 'malformed_body'],
    [{ secret, signatureHeader: `t=${t},v1=${mac(secret, t, 'not json')}`, body: 'not json', now }, 'malformed_body'],
  ];
  for (const [options, reason] of cases) assert.deepEqual(verifyWebhook(options), { ok: false, reason }, JSON.stringify(options.signatureHeader));
  assert.equal(verifyWebhook({ secret, signatureHeader: good, body, now: now + 3_600_000, toleranceSeconds: 7_200 }).ok, true);
});

test('a secret not of the shape Airlock issues is refused (invalid_secret), never used as a key, never thrown on', () => {
  const at = (key: string) => `t=${t},v1=${mac(key, t, body)}`;
  // An empty secret (AIRLOCK_WEBHOOK_SECRET= in an env file) would verify a delivery anyone can sign with the empty key.
  assert.deepEqual(verifyWebhook({ secret: '', signatureHeader: at(''), body, now }), { ok: false, reason: 'invalid_secret' });
  // Unset (process.env.X! in TypeScript), or not a string at all: an answer, not a TypeError.
  for (const bad of [undefined, null, 42, {}, Buffer.from(secret)]) {
    assert.deepEqual(verifyWebhook({ secret: bad as unknown as string, signatureHeader: at(''), body, now }), { ok: false, reason: 'invalid_secret' }, String(bad));
  }
  assert.deepEqual(verifyWebhook(undefined as never), { ok: false, reason: 'invalid_secret' });
  // Mistyped or truncated ones, each signing its own delivery: refused all the same.
  for (const bad of ['whsec_', 'whsec_test-secret', secret.slice(0, -1), `${secret}A`, secret.slice(6), ` ${secret}`, `${secret}\n`, secret.replace('whsec_', 'WHSEC_'), `${secret.slice(0, -1)}B`, `whsec_${'+'.repeat(43)}`]) {
    assert.deepEqual(verifyWebhook({ secret: bad, signatureHeader: at(bad), body, now }), { ok: false, reason: 'invalid_secret' }, JSON.stringify(bad));
  }
  // Checked first: a well-formed delivery with a bad secret says what is wrong, not that the signature is missing.
  assert.deepEqual(verifyWebhook({ secret: '', signatureHeader: undefined, body, now }), { ok: false, reason: 'invalid_secret' });
  // Every secret the server can issue passes the check.
  for (let i = 0; i < 256; i++) assert.equal(verifyWebhook({ secret: whsec(i), signatureHeader: at(whsec(i)), body, now }).ok, true, whsec(i));
});
