import { AirlockError } from '@airlock/core';

const MAX_URL_LENGTH = 2048;

/**
 * Checks a receiver URL the operator gives: absolute http(s), no credentials (a receiver authenticates a delivery
 * by its signature, and a password in the URL would be shown by every listing), no fragment (never sent).
 * Private and loopback addresses are allowed on purpose: the URL comes from the operator, whose receivers often
 * run beside the daemon (docs/threat-model.md, SSRF). Errors never quote the URL (it may hold a token in its path).
 */
export function checkWebhookUrl(url: string): string {
  if (typeof url !== 'string' || url.length === 0 || url.length > MAX_URL_LENGTH || !URL.canParse(url)) {
    throw new AirlockError('webhook_url_invalid', `url: an absolute http:// or https:// URL of at most ${MAX_URL_LENGTH} characters.`);
  }
  const parsed = new URL(url);
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new AirlockError('webhook_url_invalid', 'url: only http:// and https:// receivers are supported.');
  if (parsed.username !== '' || parsed.password !== '') {
    throw new AirlockError('webhook_url_credentials', 'url: carries a user name or password; remove it and verify the Airlock-Signature header in the receiver instead.');
  }
  if (parsed.hash !== '' || url.includes('#')) throw new AirlockError('webhook_url_invalid', 'url: a fragment (#…) is never sent to a receiver; remove it.');
  if (parsed.hostname === '') throw new AirlockError('webhook_url_invalid', 'url: names no host.');
  return parsed.href;
}

/** What audit entries and logs may say about a URL: its origin only (a path can carry a token, as Slack's do). */
export function webhookOrigin(url: string): string {
  return new URL(url).origin;
}
