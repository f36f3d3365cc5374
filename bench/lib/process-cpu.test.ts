// The daemon's CPU reading the HTTP benchmark reports: a process that spins reads as about one core, one that
// sleeps as about none. Margins are wide: this runs on a loaded 2-core machine.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { coresBetween, cpuSecondsOf } from './process-cpu.ts';

const haveProc = existsSync('/proc/self/stat');

/**
 * The cores of a node process running `script` over one second, from 300 ms after it says it has started. A fixed
 * 300 ms from the spawn was not always past node's start on a loaded machine: its start-up CPU then fell inside the
 * second, and a sleeping process read up to 0.084 cores in 120 tries at a load of 14 to 18 (it must read under 0.1).
 */
async function coresOf(script: string): Promise<number> {
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'ignore'] });
  try {
    await once(child.stdout!, 'data');
    const start = Date.now() + 300;
    return await coresBetween(child.pid!, start, start + 1000);
  } finally {
    child.kill('SIGKILL');
  }
}

test('a spinning process reads as about one core, a sleeping one as about none', { skip: haveProc ? false : 'no /proc on this system' }, async () => {
  // Started: the script has run (a pipe's write is synchronous on Linux) and, for the sleeper, the event loop turned.
  const spinning = await coresOf("process.stdout.write('started\\n'); for (;;) {}");
  const sleeping = await coresOf("setTimeout(() => {}, 60_000); setImmediate(() => process.stdout.write('started\\n'));");
  // On a loaded machine a spinner gets well under a core: at a load of 10 on 2 cores, about 0.2 (it read 0.2 or less
  // once with four test runs beside it). What the reading must tell apart is spinning from sleeping.
  assert.ok(spinning > 0.05 && spinning < 1.2, `spinning: ${spinning} cores`);
  assert.ok(sleeping < 0.1 && spinning > 2 * sleeping, `sleeping: ${sleeping} cores, spinning: ${spinning}`);
});

test('a process that is gone reads as NaN, not as zero', { skip: haveProc ? false : 'no /proc on this system' }, async () => {
  const child = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
  await new Promise((resolve) => child.once('exit', resolve));
  assert.equal(cpuSecondsOf(child.pid!), undefined);
  assert.ok(Number.isNaN(await coresBetween(child.pid!, Date.now(), Date.now() + 50)));
});
