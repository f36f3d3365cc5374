// Request ids are drawn from a pool of random bytes: across refills they stay 16 hex digits and never repeat.
// The logger's queue for a stalled reader is bounded (the daemon-level test is in packages/cli/src/operations.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger, freshRequestId, MIN_LOG_QUEUE_BYTES } from './request-log.ts';

test('fresh request ids are 16 hex digits and distinct across several refills of the pool', () => {
  const ids = Array.from({ length: 1000 }, () => freshRequestId());
  for (const id of ids) assert.match(id, /^[0-9a-f]{16}$/);
  assert.equal(new Set(ids).size, ids.length);
});

test('a reader that stops taking lines holds back at most the queue: the rest are dropped, counted, and reported in one line once it catches up', async () => {
  // A stream whose reader has stalled: each write waits until the test lets it through.
  const held: (() => void)[] = [];
  const taken: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      held.push(() => {
        taken.push(chunk.toString());
        done();
      });
    },
  });
  const queueBytes = 64 * 1024;
  const logger = createLogger('info', stream, queueBytes);
  const pad = 'x'.repeat(300);
  for (let i = 0; i < 1000; i++) logger.log('info', 'request', { i, pad });
  assert.ok(stream.writableLength < queueBytes + 400, `queued ${stream.writableLength} bytes`);
  const dropped = logger.droppedLines();
  assert.ok(dropped > 700 && dropped < 900, `dropped ${dropped}`);
  for (let i = 0; i < 50; i++) logger.log('info', 'request', { i: 1000 + i, pad });
  assert.equal(logger.droppedLines(), dropped + 50, 'still stalled: still dropped');

  // The reader catches up: everything queued arrives in order, then one notice.
  while (held.length > 0 || stream.writableLength > 0) {
    held.shift()?.();
    await new Promise((resolve) => setImmediate(resolve));
  }
  const lines = taken.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
  const requests = lines.filter((l) => l.msg === 'request');
  assert.deepEqual(requests.map((l) => l.i), Array.from({ length: 1000 - dropped }, (_, i) => i), 'the first lines, in order, none twice');
  const notices = lines.filter((l) => l.msg === 'log lines dropped');
  assert.equal(notices.length, 1);
  assert.deepEqual({ level: notices[0]!.level, dropped: notices[0]!.dropped, queueBytes: notices[0]!.queueBytes }, { level: 'error', dropped: dropped + 50, queueBytes });
  assert.match(String(notices[0]!.since), /^\d{4}-\d\d-\d\dT/);

  // Lines flow again, and the count since start stays.
  logger.log('info', 'request', { i: 2000 });
  while (held.length > 0) held.shift()!();
  assert.equal(JSON.parse(taken.at(-1)!).i, 2000);
  assert.equal(logger.droppedLines(), dropped + 50);
});

test('a queue smaller than a stream\'s high-water mark could never drain its notice: refused', () => {
  assert.throws(() => createLogger('info', new Writable(), MIN_LOG_QUEUE_BYTES - 1), /at least 65536 bytes/);
});

test('a reader that goes away (the stream fails) stops nothing: the lines still queued, the one that failed and every later one are counted', async () => {
  const held: ((error?: Error) => void)[] = [];
  const stream = new Writable({
    write(_chunk, _encoding, done) {
      held.push(done);
    },
  });
  const logger = createLogger('info', stream, MIN_LOG_QUEUE_BYTES);
  for (let i = 0; i < 100; i++) logger.log('info', 'request', { i });
  assert.equal(logger.droppedLines(), 0, 'queued, not dropped');
  // The reader closes its end: the write in progress fails, and with it every write queued behind it.
  held.shift()!(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
  // Without the logger's listener, the stream's 'error' would be thrown out of the event loop and end the process.
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(logger.droppedLines(), 100);
  for (let i = 0; i < 5; i++) logger.log('info', 'request', { i });
  assert.equal(logger.droppedLines(), 105);
  // A second logger on the same stream knows it failed, and adds no listener of its own.
  const second = createLogger('info', stream, MIN_LOG_QUEUE_BYTES);
  second.log('info', 'request', {});
  assert.equal(second.droppedLines(), 1);
  assert.equal(stream.listenerCount('error'), 1);
});

test('a reader a little slower than the lines gets whole gaps, each ended by its notice, never lines missing without one', async () => {
  const taken: string[] = [];
  let budget = 0;
  const waiting: (() => void)[] = [];
  // Takes at most 60 writes per turn of the event loop.
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      const take = () => {
        taken.push(chunk.toString());
        done();
      };
      if (budget-- > 0) setImmediate(take);
      else waiting.push(take);
    },
  });
  const logger = createLogger('info', stream, MIN_LOG_QUEUE_BYTES);
  const pad = 'x'.repeat(300);
  let i = 0;
  for (let turn = 0; turn < 200; turn++) {
    for (let n = 0; n < 80; n++) logger.log('info', 'request', { i: i++, pad });
    budget = 60;
    waiting.splice(0, 60).forEach((take) => {
      budget--;
      setImmediate(take);
    });
    await new Promise((resolve) => setImmediate(resolve));
  }
  while (stream.writableLength > 0 || waiting.length > 0) {
    budget = 1000;
    waiting.splice(0).forEach((take) => setImmediate(take));
    await new Promise((resolve) => setImmediate(resolve));
  }
  await new Promise((resolve) => setImmediate(resolve));
  const lines = taken.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { msg: string; i?: number; dropped?: number });
  const notices = lines.filter((l) => l.msg === 'log lines dropped');
  const kept = lines.filter((l) => l.msg === 'request').map((l) => l.i!);
  assert.ok(notices.length > 1, `gaps: ${notices.length}`);
  assert.equal(kept.length + logger.droppedLines(), i);
  assert.equal(notices.reduce((n, l) => n + l.dropped!, 0), logger.droppedLines());
  // Between two notices the kept lines run without a hole: every line missing sits in a gap a notice ends.
  let at = 0;
  for (const l of lines) {
    if (l.msg === 'request') {
      assert.equal(l.i, at, 'a line missing where no notice says so');
      at++;
    } else at += l.dropped!;
  }
});

test('a process whose stdout and stderr both close (`2>&1 | shipper` and the shipper dies) keeps running: lines and stderr messages are lost, not fatal', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'airlock-log-'));
  try {
    const script = join(dir, 'child.ts');
    const result = join(dir, 'result.json');
    // Logs to stdout and writes to stderr (as an internal error or a shutdown message would) every 5 ms, for
    // half a second after its pipes are gone, then reports what it counted and exits on its own.
    writeFileSync(script, `
      import { writeFileSync } from 'node:fs';
      import { createLogger } from ${JSON.stringify(new URL('./request-log.ts', import.meta.url).pathname)};
      const logger = createLogger('info');
      const alive = setInterval(() => {}, 1000);
      process.on('SIGUSR2', () => {
        let n = 0;
        const timer = setInterval(() => {
          logger.log('info', 'request', { n });
          console.error('[airlock] internal error ' + n);
          if (++n === 100) {
            clearInterval(timer);
            writeFileSync(${JSON.stringify(result)}, JSON.stringify({ dropped: logger.droppedLines() }));
            clearInterval(alive);
          }
        }, 5);
      });
      // Only once the handler is in place: the parent sends SIGUSR2 as soon as it reads this line, and a
      // SIGUSR2 before it ends the process (a CI run saw exit code null when this line came first).
      logger.log('info', 'started');
    `);
    const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<string>((resolve) => child.once('exit', (code, signal) => resolve(signal ? `signal ${signal}` : `code ${code}`)));
    await new Promise((resolve) => child.stdout.once('data', resolve));
    child.stdout.destroy();
    child.stderr.destroy();
    child.kill('SIGUSR2');
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    const code = await exited;
    clearTimeout(timer);
    assert.equal(code, 'code 0', 'the process ended by itself, not on an EPIPE thrown out of the event loop');
    assert.equal((JSON.parse(readFileSync(result, 'utf8')) as { dropped: number }).dropped, 100);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
