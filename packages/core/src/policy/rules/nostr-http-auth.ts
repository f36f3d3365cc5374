import { z } from 'zod';
import { ruleBase } from '../fields.ts';
import { compileResourcePattern, normalisePercentEscapes } from '../resource-pattern.ts';
import { createdAtFinding } from './nostr-event.ts';
import { defineRule, type Finding } from './types.ts';

/**
 * NIP-98 HTTP auth (`nostr.http_auth`, kind 27235): the URL its `u` tag names must match one of `urls`
 * (query and fragment ignored), its method must be listed, and created_at must be within `max_age_seconds`
 * of now either way (a short-lived credential). Every other request passes.
 */
export const nostrHttpAuthRule = defineRule({
  type: 'nostr_http_auth',
  schema: z.strictObject({
    ...ruleBase,
    type: z.literal('nostr_http_auth'),
    urls: z.array(z.string().min(1).max(2048)).min(1, 'expected a non-empty list').describe('URL patterns (`*` one host label or path segment, `**` anything), as for x402 resources.'),
    methods: z.array(z.string().regex(/^[A-Z]{1,16}$/, 'expected an upper-case HTTP method')).min(1, 'expected a non-empty list').default(['GET']),
    max_age_seconds: z.number().int().positive().default(60).describe('created_at within this many seconds of now, past or future (NIP-98 suggests 60).'),
  }),
  build(options, env) {
    const patterns = options.urls.map((u, i) => compileResourcePattern(u, [...env.path, 'urls', i]));
    const methods = new Set(options.methods);
    return {
      name: options.name,
      type: 'nostr_http_auth',
      windows() {},
      evaluate(ctx) {
        const nostr = ctx.input.intent.nostr;
        if (ctx.input.intent.action !== 'nostr.http_auth' || !nostr?.http) return 'pass';
        const findings: Finding[] = [];
        const url = new URL(nostr.http.url);
        const resource = `${url.protocol}//${url.host}${normalisePercentEscapes(url.pathname)}`;
        if (!patterns.some((p) => p.test(resource))) findings.push({ code: 'nostr_http_url_not_allowed', message: `${resource} matches none of the allowed URL patterns` });
        if (!methods.has(nostr.http.method)) findings.push({ code: 'nostr_http_method_not_allowed', message: `method ${nostr.http.method} is not allowed (allowed: ${options.methods.join(', ')})` });
        const skew = createdAtFinding(nostr.createdAt, ctx.input.nowMs, options.max_age_seconds, options.max_age_seconds);
        if (skew) findings.push(skew);
        return findings.length > 0 ? findings : 'pass';
      },
    };
  },
});
