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
