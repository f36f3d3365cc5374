// The config file covers every setting the daemon reads from the environment: a setting added to config.ts
// without its config-file key would be refused in a config file as "unknown" (this happened to the Nostr relays).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CONFIG_FILE_KEYS, readConfigFile } from './config-file.ts';

test('every AIRLOCK_* setting config.ts reads has a config-file key', () => {
  const source = readFileSync(new URL('./config.ts', import.meta.url), 'utf8');
  const read = [...new Set([...source.matchAll(/env\.AIRLOCK_([A-Z_]+)/g)].map((m) => m[1]!.toLowerCase()))];
  assert.ok(read.length > 20, `found ${read.length} settings in config.ts`);
  assert.deepEqual(read.filter((k) => !(CONFIG_FILE_KEYS as readonly string[]).includes(k)), []);
});

test('a config file with the Nostr bunker settings becomes their environment variables', () => {
  const dir = mkdtempSync(join(tmpdir(), 'airlock-config-'));
  try {
    const file = join(dir, 'airlock.yaml');
    writeFileSync(file, 'nostr_relays: [wss://relay.one.example, wss://relay.two.example]\nnostr_bunker_rate: 2\nnostr_bunker_burst: 4\n');
    assert.deepEqual(readConfigFile(file), {
      AIRLOCK_NOSTR_RELAYS: 'wss://relay.one.example,wss://relay.two.example',
      AIRLOCK_NOSTR_BUNKER_RATE: '2',
      AIRLOCK_NOSTR_BUNKER_BURST: '4',
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
