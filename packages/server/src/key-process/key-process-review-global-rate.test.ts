// The key process's rate limits, through its socket: one account far over its own rate must not spend the
// process-wide budget. Found by review: the global bucket was taken before the account's, so calls the account's
// bucket refused still used global tokens, and one agent flooding (NWC or bunker envelopes, 1-3 key calls each)
// made every other agent's signing fail `key_process_rate_limited` (`global_rate`).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { loadConfig } from '../config.ts';
import { initAirlock } from '../runtime.ts';
import { createLogger } from '../http/request-log.ts';
import { TEST_PASSPHRASE, TEST_VAULT } from '../testing/harness.ts';
import { askKeyProcess } from '../testing/processes.ts';
import { startKeyProcess, type RunningKeyProcess } from './key-process.ts';

/** The NIP-46 / NWC transport key of an account: what `signSchnorr` serves, metered per account. */
const transportPath = (account: number) => `m/44'/1237'/${account}'/1/0`;
const digest = new Uint8Array(32).fill(9);
const sign = (socket: string, account: number) => askKeyProcess(socket, 'signSchnorr', { path: transportPath(account), digest });

describe('key process: an account over its own rate spends none of the global budget', () => {
  const dir = mkdtempSync(join(tmpdir(), 'airlock-kp-global-rate-'));
  const socket = join(dir, 'keys.sock');
  let kp: RunningKeyProcess | undefined;

  before(async () => {
    const config = loadConfig({ dataDir: join(dir, 'data') }, {});
    await initAirlock(config, TEST_PASSPHRASE, TEST_VAULT);
    // A clock that stands still: no bucket refills during the test, so every count below is exact.
    const now = Date.now();
    kp = await startKeyProcess({
      storeUrl: config.storeUrl, vaultPath: config.vaultPath, passphrase: TEST_PASSPHRASE, socketPath: socket, vault: TEST_VAULT,
      logger: createLogger('info', new PassThrough()), headRecordPath: join(dir, 'head.json'), now: () => now,
      rates: { agent: { perSecond: 1, burst: 2 }, global: { perSecond: 1, burst: 5 }, keygen: { perSecond: 1, burst: 1 } },
    });
  });
  after(async () => {
    await kp?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('account 0 sends 40 calls against a burst of 2; account 1 still signs, and the global bucket still binds', async () => {
    const flood = await Promise.all(Array.from({ length: 40 }, () => sign(socket, 0)));
    // Before the fix: the flood's refusals had spent the global burst (5), and this was refused global_rate.
    const other = await sign(socket, 1);
    assert.equal(other.status, 200, JSON.stringify(other.body));
    assert.ok(other.body.result instanceof Uint8Array && other.body.result.length === 64, 'a BIP-340 signature');

    assert.equal(flood.filter((r) => r.status === 200).length, 2, 'its own burst');
    const refused = flood.filter((r) => r.status !== 200);
    assert.equal(refused.length, 38);
    for (const r of refused) assert.deepEqual([r.status, r.body.error.code, r.body.error.details.reason], [429, 'key_process_rate_limited', 'agent_rate']);

    // The global bucket is still what binds accounts spread out: 5 tokens, 3 used above (2 + 1), so two more
    // accounts sign and the next is refused global_rate.
    assert.equal((await sign(socket, 2)).status, 200);
    assert.equal((await sign(socket, 3)).status, 200);
    const over = await sign(socket, 4);
    assert.deepEqual([over.status, over.body.error.code, over.body.error.details.reason], [429, 'key_process_rate_limited', 'global_rate']);
  });
});
