// Reads a request body with a hard size limit checked on the bytes received, not only on Content-Length.
import type { IncomingMessage } from 'node:http';
import type { Context } from 'hono';
import { AirlockError } from '@airlock/core';
import { readCappedBytes } from '../read-capped.ts';

function tooLarge(limit: number): AirlockError {
  return new AirlockError('body_too_large', `Request bodies are limited to ${limit} bytes.`);
}

/**
 * The body's bytes, at most `limit` of them (413 `body_too_large` beyond). Behind @hono/node-server the
 * Node request is `c.env.incoming` (its documented bindings): its chunks are read as they come, without
 * the web ReadableStream that `c.req.raw.body` builds over it (Readable.toWeb, a promise per chunk).
 * Hono's own `c.req.arrayBuffer()` would be as direct but buffers the whole body before any size check.
 * Elsewhere (`app.request()` in tests, another runtime) the web stream is read with the same limit.
 */
export async function readBodyBytes(c: Context, limit: number): Promise<Buffer> {
  const declared = Number(c.req.header('content-length') ?? 0);
  if (declared > limit) throw tooLarge(limit);
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
  if (isNodeRequest(incoming)) return readNodeBody(incoming, limit);
  return readWebBody(c.req.raw.body, limit);
}

function isNodeRequest(value: unknown): value is IncomingMessage {
  // The test harness passes `{ incoming: { socket } }` to stand in for the client address: not a stream.
  return typeof value === 'object' && value !== null && typeof (value as IncomingMessage).on === 'function' && typeof (value as IncomingMessage).read === 'function';
}

function readNodeBody(incoming: IncomingMessage, limit: number): Promise<Buffer> {
  if (incoming.readableEnded) return Promise.resolve(Buffer.alloc(0));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = () => {
      incoming.off('data', onData);
      incoming.off('end', onEnd);
      incoming.off('error', onError);
      incoming.off('close', onClose);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.byteLength;
      if (size > limit) {
        // Stop reading; Node discards the rest of the body once the 413 is sent (as with the web stream's cancel).
        cleanup();
        incoming.pause();
        reject(tooLarge(limit));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    };
    const onError = (e: Error) => {
      cleanup();
      reject(e);
    };
    // A client that disconnects mid-body: nothing to answer, and the partial body is never used.
    const onClose = () => {
      if (incoming.readableEnded) return onEnd();
      cleanup();
      reject(new Error('the client closed the connection before the request body ended'));
    };
    incoming.on('data', onData);
    incoming.on('end', onEnd);
    incoming.on('error', onError);
    incoming.on('close', onClose);
  });
}

async function readWebBody(body: ReadableStream<Uint8Array> | null, limit: number): Promise<Buffer> {
  const bytes = await readCappedBytes(body, limit);
  if (!bytes) throw tooLarge(limit);
  return bytes;
}
