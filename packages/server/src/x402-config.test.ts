import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AirlockError } from '@airlock/core';
import { loadConfig, parseEvmRpc } from './config.ts';
import { rpcChainReader } from './evm-chain-reader.ts';

test('AIRLOCK_EVM_RPC maps CAIP-2 networks to RPC URLs; a bad entry is refused without echoing the URL', () => {
  assert.deepEqual(parseEvmRpc('eip155:31337=http://127.0.0.1:8545, eip155:84532=https://rpc.example/v2/key?x=1'), {
    'eip155:31337': 'http://127.0.0.1:8545',
    'eip155:84532': 'https://rpc.example/v2/key?x=1',
  });
  assert.deepEqual(parseEvmRpc(undefined), {});
  assert.throws(() => parseEvmRpc('base=https://secret-key.example'), (e: AirlockError) => e.code === 'invalid_request' && !e.message.includes('secret-key'));
  const config = loadConfig({ dataDir: '/tmp/x' }, { AIRLOCK_EVM_RPC: 'eip155:8453=https://base.example', AIRLOCK_RECONCILE_INTERVAL: '5s' });
  assert.deepEqual(config.evmRpc, { 'eip155:8453': 'https://base.example' });
  assert.equal(config.reconcileIntervalMs, 5_000);
  assert.equal(loadConfig({ dataDir: '/tmp/x' }, {}).reconcileIntervalMs, 30_000);
});

test('the RPC chain reader supports exactly the configured networks', async () => {
  const reader = rpcChainReader({ 'eip155:31337': 'http://127.0.0.1:1' });
  assert.equal(reader.supports('eip155:31337'), true);
  assert.equal(reader.supports('eip155:1'), false);
  await assert.rejects(reader.authorizationState('eip155:1', '0x' + '11'.repeat(20), '0x' + '22'.repeat(20), '0x' + '33'.repeat(32)), /no RPC configured/);
});

test('a non-loopback plain-http RPC URL is refused at config load (https required); loopback http is accepted', () => {
  for (const url of ['http://rpc.example/v2/secret-key', 'http://10.0.0.5:8545', 'http://[2001:db8::1]:8545', 'http://127.0.0.1.nip.io:8545', 'http://localhost.evil.example', 'http://rpc.localhost:8545']) {
    assert.throws(
      () => loadConfig({ dataDir: '/tmp/x' }, { AIRLOCK_EVM_RPC: `eip155:8453=${url}` }),
      (e: AirlockError) => e.code === 'invalid_request' && /https/.test(e.message) && !e.message.includes('secret-key') && !e.message.includes('10.0.0.5'),
      url,
    );
  }
  for (const url of ['http://127.0.0.1:8545', 'http://127.3.4.5:8545', 'http://[::1]:8545', 'http://localhost:8545', 'http://LOCALHOST:8545', 'https://rpc.example/v2/key']) {
    assert.deepEqual(parseEvmRpc(`eip155:8453=${url}`), { 'eip155:8453': url }, url);
  }
});

test('reconciler settings: margin, block tag, skew, pinned lag and log lookback from the environment, with safe defaults', () => {
  assert.deepEqual(loadConfig({ dataDir: '/tmp/x' }, {}).reconcile, { marginSeconds: 300, blockTag: 'finalized', maxClockSkewSeconds: 120, maxPinnedLagSeconds: 3600, logLookbackBlocks: 100_000 });
  const env = { AIRLOCK_RECONCILE_MARGIN: '10m', AIRLOCK_RECONCILE_BLOCK_TAG: 'safe', AIRLOCK_RECONCILE_MAX_SKEW: '30s', AIRLOCK_RECONCILE_MAX_PINNED_LAG: '2h', AIRLOCK_RECONCILE_LOG_LOOKBACK: '5000' };
  assert.deepEqual(loadConfig({ dataDir: '/tmp/x' }, env).reconcile, { marginSeconds: 600, blockTag: 'safe', maxClockSkewSeconds: 30, maxPinnedLagSeconds: 7200, logLookbackBlocks: 5000 });
  assert.throws(() => loadConfig({ dataDir: '/tmp/x' }, { AIRLOCK_RECONCILE_BLOCK_TAG: 'latest' }), (e: AirlockError) => e.code === 'invalid_request');
  assert.throws(() => loadConfig({ dataDir: '/tmp/x' }, { AIRLOCK_RECONCILE_MARGIN: '0' }), (e: AirlockError) => e.code === 'invalid_request');
});
