import { EVENT_ID_HEADER, EVENT_TYPE_HEADER, SIGNATURE_HEADER } from './signature.ts';

/** What one POST to a receiver got: its status, or the class of what went wrong (never a message). */
export type PostResult = { httpStatus: number } | { errorClass: WebhookErrorClass };

export type WebhookErrorClass = 'timeout' | 'connection_refused' | 'dns' | 'tls' | 'network' | 'aborted' | 'key_unavailable';

export interface SignedDelivery {
  url: string;
  body: string;
  eventId: string;
  eventType: string;
  signature: string;
}

/**
 * POSTs one signed delivery. Redirects are not followed (a 3xx is an answer that is not 2xx: retried), so a
 * receiver cannot bounce the daemon to another address. The status is the answer: the body is never read, only
 * cancelled, and asked for uncompressed. It was read whole (and decompressed) into memory: an endless answer
 * grew the daemon by 660 MiB per delivery within the timeout, 2 MiB of gzip became 2.4 GB (found by review).
 * `timeoutMs` bounds the whole exchange; `stop` (shutdown) aborts it.
 */
export async function postDelivery(d: SignedDelivery, timeoutMs: number, stop: AbortSignal): Promise<PostResult> {
  const timeout = AbortSignal.timeout(timeoutMs);
  try {
    const res = await fetch(d.url, {
      method: 'POST',
      redirect: 'manual',
      signal: AbortSignal.any([timeout, stop]),
      headers: {
        'content-type': 'application/json',
        'user-agent': 'Airlock-Webhooks/1',
        // undici decompresses as the body is read, which it never is here; asked anyway, so no receiver is led
        // to think a compressed answer is wanted.
        'accept-encoding': 'identity',
        [SIGNATURE_HEADER]: d.signature,
        [EVENT_ID_HEADER]: d.eventId,
        [EVENT_TYPE_HEADER]: d.eventType,
      },
      body: d.body,
    });
    await res.body?.cancel().catch(() => undefined);
    return { httpStatus: res.status };
  } catch (e) {
    if (stop.aborted) return { errorClass: 'aborted' };
    if (timeout.aborted) return { errorClass: 'timeout' };
    return { errorClass: errorClassOf(e) };
  }
}

function errorClassOf(e: unknown): WebhookErrorClass {
  const code = String((e as { cause?: { code?: unknown } })?.cause?.code ?? '');
  if (code === 'ECONNREFUSED') return 'connection_refused';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'dns';
  if (/CERT|TLS|SSL|SELF_SIGNED/.test(code)) return 'tls';
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'ETIMEDOUT') return 'timeout';
  return 'network';
}
