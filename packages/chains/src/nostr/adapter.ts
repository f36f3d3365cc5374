// The nostr ChainAdapter: unsigned NIP-01 events (and NIP-98 HTTP auth events) into intents, BIP-340 signatures
// checked before release. NIP-44 operations decode into intents too (policy judges them) but are never signed here.
import { AirlockError, NOSTR_CHAIN, type Action, type ChainAdapter, type DecodedRequest, type Intent, type NostrInfo, type ProducedSignature, type SignResult, type SignerContext } from '@airlock/core';
import { schnorr } from '@noble/curves/secp256k1.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, concatBytes, hexToBytes, randomBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import { checkNip04Input } from './nip04.ts';
import { checkNip44Input } from './nip44.ts';
import { eventIdBytes, HEX32, parseUnsignedEvent, type UnsignedEvent } from './event.ts';
import { nostrIdentityPath, xOnlyHex } from './keys.ts';

const NOSTR_ACTIONS = ['nostr.event', 'nostr.http_auth', 'nostr.nip44', 'nostr.nip04'] as const satisfies readonly Action[];
/** NIP-98 HTTP auth. */
export const HTTP_AUTH_KIND = 27235;
const HTTP_METHODS = /^[A-Z]{1,16}$/;

/** What a NIP-44 request carries into decode (the service builds it; agents never send this shape). */
export interface Nip44Request {
  op: 'encrypt' | 'decrypt';
  peer: string;
  /** The plaintext (encrypt) or the payload (decrypt). */
  text: string;
}

export function createNostrAdapter(): ChainAdapter {
  return {
    namespace: 'nostr',
    actions: NOSTR_ACTIONS,
    signatureScheme: () => 'schnorr-secp256k1',
    // keyIndex is not part of a Nostr identity: rotating an agent's EVM key must not change who it is on Nostr.
    derivationPath: (accountIndex: number) => nostrIdentityPath(accountIndex),
    addressFromPublicKey: xOnlyHex,

    decode(action: Action, payload: unknown, signer: SignerContext): DecodedRequest {
      switch (action) {
        case 'nostr.event':
        case 'nostr.http_auth':
          return decodeEvent(action, payload, signer.address);
        case 'nostr.nip44':
          return decodeEncryption('nip44', payload as Nip44Request, signer.address);
        case 'nostr.nip04':
          return decodeEncryption('nip04', payload as Nip44Request, signer.address);
        default:
          throw new AirlockError('unsupported_action', 'the nostr adapter does not handle this action');
      }
    },

    finalize(action: Action, decoded: DecodedRequest, produced: ProducedSignature, signer: SignerContext): SignResult {
      if (action === 'nostr.nip44' || action === 'nostr.nip04') throw new AirlockError('signature_check_failed', 'NIP-44 and NIP-04 operations are not signed');
      if (!('schnorr' in produced)) throw new AirlockError('signature_check_failed', 'Nostr events are signed with BIP-340 Schnorr');
      const event = decoded.prepared as UnsignedEvent;
      // Our own BIP-340 verification against the agent's x-only key, over this request's event id: nothing else is released.
      if (event.pubkey !== signer.address || !schnorr.verify(produced.schnorr, decoded.digest, hexToBytes(event.pubkey))) {
        throw new AirlockError('signature_check_failed');
      }
      const sig = bytesToHex(produced.schnorr);
      return { signature: sig, event: { id: bytesToHex(decoded.digest), pubkey: event.pubkey, created_at: event.created_at, kind: event.kind, tags: event.tags, content: event.content, sig } };
    },
  };
}

function tagValues(tags: string[][], names: readonly string[]): string[] {
  const out = new Set<string>();
  for (const t of tags) if (names.includes(t[0]!) && t[1] !== undefined) out.add(names[0] === 'p' || names[0] === 'e' ? t[1].toLowerCase() : t[1]);
  return [...out];
}

const HEX_PUBKEY = /^[0-9a-fA-F]{64}$/;
/**
 * An addressable event's coordinate, `<kind>:<pubkey>:<d tag>` (NIP-01 `a` tags, NIP-22 `A`, NIP-18 `q`): the pubkey
 * is read between the first and second colon whatever the kind text is, as clients read it (nostr-tools'
 * parseAddressPointer splits on `:` and parseInt's the kind, so `+30023`, ` 30023` or `30023x` still name the author;
 * found by review: a strict decimal kind let those pass `p_tags`).
 */
const ADDRESS = /^[^:]*:([0-9a-fA-F]{64})(?::|$)/;
/**
 * What `tags.p` holds for a value that names no pubkey: no `p_tags` list can name it (lists are 64 hex digits), so a
 * list refuses it, and the value as written (free text, such as a secret a content filter refused) stays out of
 * the audit entry (found by review: an nsec in a `p` tag was written to the log by the entry of its refusal).
 */
const NOT_A_PUBKEY = 'not-a-pubkey';

/**
 * Every pubkey the tags name, lowercase: `p` and NIP-22 `P` (mentioned and root authors), NIP-57 `zap` (who the
 * note's zaps are paid to, Appendix G; found by an earlier review), NIP-26 `delegation` (the delegator), the author
 * of `q` (NIP-18: its hint, 4th element, or the author in the address it quotes) and of `e`/`E` (NIP-10 marked form, 5th element; NIP-22 `E`, 4th), and the author
 * in `a`/`A` coordinates. A malformed value under `p`, `P`, `zap` or `delegation` is kept as NOT_A_PUBKEY, so a list
 * can only refuse it.
 */
function namedPubkeys(tags: string[][]): string[] {
  const out = new Set<string>();
  const add = (v: string | undefined, strict: boolean) => {
    if (v === undefined) return;
    if (HEX_PUBKEY.test(v)) out.add(v.toLowerCase());
    else if (!strict) out.add(NOT_A_PUBKEY);
  };
  for (const t of tags) {
    switch (t[0]) {
      case 'p':
      case 'P':
      case 'zap':
      case 'delegation':
        add(t[1], false);
        break;
      case 'q':
        // NIP-18: an event id with the author as a hint (4th element), or an event address naming its author.
        add(t[3], true);
        add(ADDRESS.exec(t[1] ?? '')?.[1], true);
        break;
      case 'e':
      case 'E':
        add(t[3], true);
        add(t[4], true);
        break;
      case 'a':
      case 'A':
        add(ADDRESS.exec(t[1] ?? '')?.[1], true);
        break;
    }
  }
  return [...out];
}

/** Values that stay on the intent for rules, off its JSON view (audit entries, responses): not enumerable. */
function withHidden<T extends object>(target: T, hidden: Record<string, unknown>): T {
  for (const [key, value] of Object.entries(hidden)) Object.defineProperty(target, key, { value, enumerable: false });
  return target;
}

function withContent(info: Omit<NostrInfo, 'content'>, content: string): NostrInfo {
  return withHidden(info, { content }) as NostrInfo;
}

function decodeEvent(action: 'nostr.event' | 'nostr.http_auth', payload: unknown, pubkey: string): DecodedRequest {
  const event = parseUnsignedEvent(payload, pubkey);
  const isHttpAuth = event.kind === HTTP_AUTH_KIND;
  if (action === 'nostr.event' && isHttpAuth) throw new AirlockError('invalid_request', 'kind 27235 (NIP-98 HTTP auth) is signed through POST /v1/sign/nostr-http-auth');
  if (action === 'nostr.http_auth' && !isHttpAuth) throw new AirlockError('invalid_request', 'nostr.http_auth signs kind 27235 events only');
  const digest = eventIdBytes(event);
  const id = bytesToHex(digest);
  const { tags } = event;
  // Clients render tags too (subject, content-warning, imeta, alt) and relays store and publish every element of
  // one: content rules judge each element, the tag's name as well as its values (found by review: an nsec written as
  // a tag name passed the secret filter, and a 10,000-byte name `max_tag_bytes`, when they judged values only).
  const tagText = tags.flat();
  const info: Omit<NostrInfo, 'content'> = {
    eventKind: event.kind,
    eventId: id,
    createdAt: event.created_at,
    contentBytes: utf8ToBytes(event.content).length,
    // Every pubkey a tag names, for `p_tags`: relays index single-letter tags and clients notify or surface what they
    // name, so a list that judged `p` alone let an event reach a stranger through `P`, `q`, `a` (found by review).
    // Tag values are free text that `deny_content_pattern` screens, and the audit log is append-only: rules read
    // them, the entry does not carry them, as it does not carry the content (found by review: the entry refusing an
    // nsec in a `t` tag stored the nsec). The entry keeps the pubkeys named, the tag count and the event id, which
    // commits to every tag.
    tags: withHidden({ p: namedPubkeys(tags), count: tags.length } as NonNullable<NostrInfo['tags']>, { e: tagValues(tags, ['e']), t: tagValues(tags, ['t']), relays: tagValues(tags, ['relay', 'r']) }),
    tagBytes: tagText.reduce((n, v) => n + utf8ToBytes(v).length, 0),
  };
  withHidden(info, { tagText });
  if (isHttpAuth) info.http = httpAuthTarget(tags);
  const intent: Intent = {
    action,
    chain: NOSTR_CHAIN,
    kind: isHttpAuth ? 'nostr.http_auth' : 'nostr.event',
    from: pubkey,
    spends: [],
    approvals: [],
    nostr: withContent(info, event.content),
    summary: isHttpAuth ? `NIP-98 auth for ${info.http!.method} ${info.http!.url}` : `nostr kind ${event.kind} event ${id.slice(0, 12)}… (${info.contentBytes} bytes, ${tags.length} tags)`,
  };
  return { intent, digest, prepared: event };
}

/** NIP-98: exactly one absolute `u` URL and one `method` tag; anything less says nothing policy can check. */
function httpAuthTarget(tags: string[][]): { url: string; method: string } {
  const us = tags.filter((t) => t[0] === 'u');
  const methods = tags.filter((t) => t[0] === 'method');
  if (us.length !== 1 || methods.length !== 1) throw new AirlockError('invalid_request', 'a NIP-98 event has exactly one u tag and one method tag');
  let url: URL;
  try {
    url = new URL(us[0]![1] ?? '');
  } catch {
    throw new AirlockError('invalid_request', 'the u tag must be an absolute URL');
  }
  if ((url.protocol !== 'https:' && url.protocol !== 'http:') || url.username || url.password) throw new AirlockError('invalid_request', 'the u tag must be an http(s) URL without credentials');
  // Policy judges the URL as WHATWG parses it, but the event signs the tag as written, and a server may parse it
  // otherwise: `/admin/%2e%2e/public/x` passes a `/public/**` rule as `/public/x` (found by review). What can make
  // the two readings differ is refused: dot segments (encoded or not, or with `;params`, the `;` encoded or not),
  // encoded slashes, backslashes, percent signs and control characters, raw backslashes, whitespace and control
  // characters. Differences that mean the same URL everywhere (no trailing slash on an empty path, the case of the
  // scheme and host, a default port, percent-encoding) are not: nostr-tools' getToken writes the URL it is given.
  if (ambiguousUrl(us[0]![1]!)) throw new AirlockError('invalid_request', `the u tag has dot segments, encoded slashes, backslashes or percent signs, backslashes, whitespace or control characters, which servers read differently; write it as the URL it means (${JSON.stringify(url.href)})`);
  const method = methods[0]![1] ?? '';
  if (!HTTP_METHODS.test(method)) throw new AirlockError('invalid_request', 'the method tag must be an upper-case HTTP method');
  return { url: url.href, method };
}

/** Whether a URL as written could be read as another path than WHATWG's parse of it (see httpAuthTarget). */
function ambiguousUrl(raw: string): boolean {
  if (/[\\\x00-\x20\x7f]/.test(raw)) return true;
  const path = raw.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i, '').split(/[?#]/, 1)[0]!;
  // An encoded slash or backslash becomes a separator behind decoding proxies and Windows servers, and an encoded
  // percent a dot segment behind servers that decode twice (`..%2Fadmin`, `..%5Cadmin`, `%252e%252e`: found by
  // review). A segment's `;params` are dropped by Java servlet containers before `..` is resolved (`..;/admin`).
  // An encoded control character is one once decoded (raw ones are refused above): `..%00` and `..%09` are `..` to a
  // server that truncates or trims there. An encoded semicolon is a `;` once a proxy decodes it, so it starts
  // `;params` as a literal one does (`%2e%2e%3b/admin` is `..;/admin` behind a decoding proxy; found by review
  // 2026-12-05).
  if (/%(2f|5c|25|[01][0-9a-f]|7f)/i.test(path)) return true;
  // Spellings of a dot that lenient decoders accept (found by the review of the fix above): IIS's `%u002e` (`%u` is
  // no percent-encoding at all) and overlong UTF-8 (`%c0%ae`; `%c0`, `%c1` only ever start an overlong form, as do
  // `%e0%80`-`%e0%9f` and `%f0%80`-`%f0%8f`).
  if (/%u[0-9a-f]{4}|%c[01]|%e0%[89]|%f0%8/i.test(path)) return true;
  // An encoded space at a segment's edge is trimmed by some servers, as a tab is (`..%20`).
  return path.split('/').some((segment) => /^(\.|%2e){1,2}$/i.test(segment.split(/;|%3b/i, 1)[0]!.replace(/^(%20)+|(%20)+$/gi, '')));
}

/** NIP-44 and (where a rule allows it) NIP-04: the peer and the direction, judged by policy; nothing is signed. */
function decodeEncryption(scheme: 'nip44' | 'nip04', request: Nip44Request, pubkey: string): DecodedRequest {
  const NAME = scheme === 'nip44' ? 'NIP-44' : 'NIP-04';
  if (!request || (request.op !== 'encrypt' && request.op !== 'decrypt') || typeof request.text !== 'string') throw new AirlockError('invalid_request', `a ${NAME} request names op, peer and text`);
  const peer = typeof request.peer === 'string' ? request.peer.toLowerCase() : '';
  if (!HEX32.test(peer)) throw new AirlockError('invalid_request', 'peer: a 32-byte x-only public key as 64 hex characters');
  // Everything that can be judged without the key is judged here, before the request is authorized: a malformed
  // one is refused with no audit entry and no rate count (it used to fail after both).
  try {
    schnorr.utils.lift_x(BigInt(`0x${peer}`));
  } catch {
    throw new AirlockError('invalid_request', 'peer: not the x coordinate of a point on secp256k1');
  }
  (scheme === 'nip44' ? checkNip44Input : checkNip04Input)(request.op, request.text);
  const bytes = utf8ToBytes(request.text);
  // The audit digest binds op, peer and the text: a ciphertext's hash for decrypt; for encrypt, the plaintext's
  // hash under a fresh random salt, so the log (and any export of it) cannot be used to test guesses of the
  // plaintext offline (an unsalted hash of a short message was brute-forced in a second; found by review).
  // Nothing replays an encryption (each draws a fresh nonce), so nothing needs to recognise it again.
  const textHash = request.op === 'encrypt' ? sha256(concatBytes(randomBytes(32), bytes)) : sha256(bytes);
  const digest = sha256(utf8ToBytes(`${scheme === 'nip44' ? 'nip44-v2' : 'nip04'}|${request.op}|${pubkey}|${peer}|${bytesToHex(textHash)}`));
  const intent: Intent = {
    action: `nostr.${scheme}`,
    chain: NOSTR_CHAIN,
    kind: `nostr.${scheme}`,
    from: pubkey,
    spends: [],
    approvals: [],
    nostr: withContent({ contentBytes: bytes.length, [scheme]: { peer, op: request.op } }, request.op === 'encrypt' ? request.text : ''),
    summary: `${NAME} ${request.op} with ${peer.slice(0, 12)}… (${bytes.length} bytes)`,
  };
  return { intent, digest };
}
