/** How long a stopping daemon or key process waits for its log reader to take the lines still queued for it. */
export const STOP_LOG_GRACE_MS = 2000;

/**
 * Resolves once `stream`'s queue is empty, or after `ms`: process.exit drops whatever a pipe's reader has not
 * taken yet (AIRLOCK_LOG_QUEUE holds up to 8 MiB of it), so a reader that is merely slow still gets its lines.
 */
export async function streamTaken(stream: NodeJS.WriteStream, ms = STOP_LOG_GRACE_MS): Promise<void> {
  // Polled: 'drain' comes only after a write that found the queue above its high-water mark.
  const until = Date.now() + ms;
  while (stream.writableLength > 0 && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 20));
}
