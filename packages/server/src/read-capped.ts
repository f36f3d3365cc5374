// One bounded read of a web stream, for every body Airlock takes from outside (a request body, a node's answer, a
// threshold node's reply): nothing past the cap is held in memory, and the stream is cancelled there.

/**
 * The stream's bytes if they are at most `max`, else undefined (the rest is not read: the stream is cancelled).
 * `declaredLength` (a Content-Length header) past `max` refuses before anything is read. A failed read throws.
 */
export async function readCappedBytes(stream: ReadableStream<Uint8Array> | null | undefined, max: number, declaredLength?: string | null): Promise<Buffer | undefined> {
  if (Number(declaredLength ?? 0) > max) {
    await stream?.cancel().catch(() => undefined);
    return undefined;
  }
  if (!stream) return Buffer.alloc(0);
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel().catch(() => undefined);
      return undefined;
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks, size);
}
