import { z } from 'zod';
import { matchField, nostrPubkeyField, ruleBase } from '../fields.ts';
import { CompiledMatch } from '../match.ts';
import { invalidPolicyAt, type PolicyPath } from '../path.ts';
import { applies, defineRule, type Finding } from './types.ts';
import { compileOperatorPattern, PATTERN_UNSAFE, type OperatorPattern } from '../operator-pattern.ts';

const seconds = z.number({ error: 'expected a non-negative integer number of seconds' }).int('expected an integer number of seconds').min(0, 'expected a non-negative number of seconds');

function compilePattern(source: string | undefined, path: PolicyPath): OperatorPattern | undefined {
  if (source === undefined) return undefined;
  try {
    return compileOperatorPattern(source);
  } catch {
    throw invalidPolicyAt(path, 'expected a valid regular expression');
  }
}

/**
 * The most characters (content and tags, names and values, together) the patterns run over. The operator's
 * pattern runs over the agent's text on the event loop: one common in deny lists, `https?://\S*\.(exe|apk)`, takes
 * time quadratic in the text, and a 250 KB note of `http://` repeated stalled every request of the daemon for 5 s
 * (found by review). Here that pattern takes milliseconds; larger events are refused where a pattern applies, and a
 * pattern never runs once the size cap has refused the content.
 */
export const MAX_PATTERN_INPUT = 16_384;

/**
 * What a Nostr event (NIP-01, NIP-98 included) may say, where its `match` touches it: content size and
 * patterns, the pubkeys its `p` tags may name (a DM only to listed people), how many tags, how far
 * created_at may sit from now. Every constraint given must hold; requests that are not Nostr events pass.
 */
export const nostrEventRule = defineRule({
  type: 'nostr_event',
  schema: z.strictObject({
    ...ruleBase,
    type: z.literal('nostr_event'),
    max_content_bytes: z.number().int().min(0).optional().describe('Largest content, in UTF-8 bytes.'),
    content_pattern: z.string().min(1).optional().describe('A regular expression the content must match (JavaScript syntax, unicode mode). Patterns judge at most 16,384 characters of content and tags (names and values); a larger event is refused.'),
    deny_content_pattern: z.string().min(1).optional().describe('A regular expression neither the content nor any tag name or value may match (clients render tags too: subject, content-warning, alt).'),
    max_tag_bytes: z.number().int().min(0).optional().describe('Largest total of all tags, names and values, in UTF-8 bytes.'),
    p_tags: z.array(nostrPubkeyField).optional().describe('Every pubkey a tag names (p, P, zap, delegation, the author of q and e/E, a/A coordinates) must be one of these (an empty list: no tag naming anyone).'),
    max_tags: z.number().int().min(0).optional(),
    max_past_seconds: seconds.optional().describe('created_at at most this far before now.'),
    max_future_seconds: seconds.optional().describe('created_at at most this far after now.'),
    match: matchField.optional(),
  }),
  build(options, env) {
    const constraints = ['max_content_bytes', 'content_pattern', 'deny_content_pattern', 'max_tag_bytes', 'p_tags', 'max_tags', 'max_past_seconds', 'max_future_seconds'] as const;
    if (constraints.every((k) => options[k] === undefined)) throw invalidPolicyAt(env.path, `a nostr_event rule names at least one of ${constraints.join(', ')}`);
    const contentPattern = compilePattern(options.content_pattern, [...env.path, 'content_pattern']);
    const denyPattern = compilePattern(options.deny_content_pattern, [...env.path, 'deny_content_pattern']);
    // A pattern refused as unsafe (kept by a policy stored before patterns were checked) is never run: the rule
    // refuses every event it would have judged, so a required pattern never passes and a forbidden one never misses.
    const unsafe = [['content_pattern', contentPattern], ['deny_content_pattern', denyPattern]] as const;
    const pTags = options.p_tags && new Set(options.p_tags.map((p) => p.toLowerCase()));
    const match = options.match && new CompiledMatch(options.match, env.sets, [...env.path, 'match']);
    return {
      name: options.name,
      type: 'nostr_event',
      windows() {},
      evaluate(ctx) {
        const nostr = ctx.input.intent.nostr;
        if (nostr?.eventKind === undefined || !applies(match, ctx)) return 'pass';
        const findings: Finding[] = [];
        if (options.max_content_bytes !== undefined && nostr.contentBytes > options.max_content_bytes) {
          findings.push({ code: 'nostr_content_too_large', message: `the content is ${nostr.contentBytes} bytes; at most ${options.max_content_bytes} allowed`, limit: String(options.max_content_bytes), requested: String(nostr.contentBytes) });
        }
        const content = nostr.content ?? '';
        const tagText = nostr.tagText ?? [];
        const tooLarge = findings.length > 0;
        const patternInput = content.length + tagText.reduce((n, v) => n + v.length, 0);
        if ((contentPattern || denyPattern) && !tooLarge && patternInput > MAX_PATTERN_INPUT) {
          findings.push({ code: 'nostr_content_too_large', message: `content patterns judge at most ${MAX_PATTERN_INPUT} characters of content and tags (names and values) together; this event has ${patternInput}`, limit: String(MAX_PATTERN_INPUT), requested: String(patternInput) });
        } else if (!tooLarge) {
          for (const [field, p] of unsafe) if (p?.unsafe !== undefined) findings.push({ code: PATTERN_UNSAFE, message: `this rule's ${field} is never run: ${p.unsafe} (a policy stored before patterns were checked; set the policy again with a safe pattern). Refused` });
          const required = contentPattern?.regex;
          const forbidden = denyPattern?.regex;
          if (required && !required.test(content)) findings.push({ code: 'nostr_content_not_allowed', message: 'the content does not match the required pattern' });
          if (forbidden?.test(content)) findings.push({ code: 'nostr_content_not_allowed', message: 'the content matches a forbidden pattern' });
          else if (forbidden && tagText.some((v) => forbidden.test(v))) findings.push({ code: 'nostr_content_not_allowed', message: 'a tag (its name or a value) matches a forbidden pattern' });
        }
        if (options.max_tag_bytes !== undefined && (nostr.tagBytes ?? 0) > options.max_tag_bytes) {
          findings.push({ code: 'nostr_tag_not_allowed', message: `the tags (names and values) are ${nostr.tagBytes} bytes; at most ${options.max_tag_bytes} allowed`, limit: String(options.max_tag_bytes), requested: String(nostr.tagBytes) });
        }
        const tags = nostr.tags;
        if (pTags && tags) {
          const unlisted = tags.p.filter((p) => !pTags.has(p));
          if (unlisted.length > 0) findings.push({ code: 'nostr_tag_not_allowed', message: `p tag names ${unlisted.length === 1 ? 'a pubkey' : `${unlisted.length} pubkeys`} not listed (${unlisted.map((p) => `${p.slice(0, 12)}…`).join(', ')})` });
        }
        if (options.max_tags !== undefined && tags && tags.count > options.max_tags) {
          findings.push({ code: 'nostr_tag_not_allowed', message: `the event has ${tags.count} tags; at most ${options.max_tags} allowed`, limit: String(options.max_tags), requested: String(tags.count) });
        }
        const skew = createdAtFinding(nostr.createdAt, ctx.input.nowMs, options.max_past_seconds, options.max_future_seconds);
        if (skew) findings.push(skew);
        return findings.length > 0 ? findings : 'pass';
      },
    };
  },
});

/** created_at against now: shared with nostr_http_auth. */
export function createdAtFinding(createdAt: number | undefined, nowMs: number, maxPast: number | undefined, maxFuture: number | undefined): Finding | undefined {
  if (createdAt === undefined) return undefined;
  const now = Math.floor(nowMs / 1000);
  if (maxPast !== undefined && createdAt < now - maxPast) {
    return { code: 'nostr_created_at_out_of_window', message: `created_at is ${now - createdAt}s in the past; at most ${maxPast}s allowed`, limit: String(maxPast), requested: String(now - createdAt) };
  }
  if (maxFuture !== undefined && createdAt > now + maxFuture) {
    return { code: 'nostr_created_at_out_of_window', message: `created_at is ${createdAt - now}s in the future; at most ${maxFuture}s allowed`, limit: String(maxFuture), requested: String(createdAt - now) };
  }
  return undefined;
}
