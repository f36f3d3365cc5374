// The key process of bench/key-process.ts: `airlock key-process` as the CLI starts it, but on a test vault
// (the CLI opens vaults with the production KDF only). argv: storeUrl vaultPath socketPath.
import { TEST_PASSPHRASE, TEST_VAULT } from '../packages/server/src/testing/harness.ts';
import { startKeyProcess } from '../packages/server/src/key-process/key-process.ts';
import { createLogger } from '../packages/server/src/http/request-log.ts';

const [storeUrl, vaultPath, socketPath] = process.argv.slice(2) as [string, string, string];
// Rates far above what one process can sign: the bench measures the path, not the limiter's refusals.
const rates = { agent: { perSecond: 1_000_000, burst: 1_000_000 }, global: { perSecond: 1_000_000, burst: 1_000_000 }, keygen: { perSecond: 1_000_000, burst: 1_000_000 } };
await startKeyProcess({ storeUrl, vaultPath, socketPath, passphrase: TEST_PASSPHRASE, vault: TEST_VAULT, rates, logger: createLogger('warn', process.stderr) });
console.log('ready');
