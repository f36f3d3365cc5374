// The last line of defence for secrets in tool output: every result and error text passes through here
// before it reaches the model. The session token must never appear; RPC URLs often carry an API key in
// their path (https://…/v3/<key>) or query (?apikey=<key>), so they are replaced by their chain too, and
// so is each long piece of them on its own: an RPC error may echo the bare key (found by review).

export type Redactor = (text: string) => string;

export function createRedactor(secrets: { token: string; rpc: Map<number, string> }): Redactor {
  const pairs: [string, string][] = [[secrets.token, '[session token]']];
  // The secret half alone too: an error that split the token at its dot must not leak the part that matters.
  const dot = secrets.token.indexOf('.');
  if (dot > 0) pairs.push([secrets.token.slice(dot + 1), '[session token]']);
  for (const [chainId, url] of secrets.rpc) {
    pairs.push([url, `[rpc eip155:${chainId}]`]);
    const u = new URL(url);
    if (u.pathname.length > 1 || u.search) pairs.push([`${u.pathname}${u.search}`.replace(/^\//, ''), '[rpc path]']);
    for (const piece of keyLikePieces(u)) pairs.push([piece, '[rpc key]']);
  }
  // Longest first, so a URL is replaced whole before a piece of it.
  pairs.sort((a, b) => b[0].length - a[0].length);
  return (text) => {
    let out = text;
    for (const [secret, label] of pairs) if (secret.length >= 8) out = out.split(secret).join(label);
    return out;
  };
}

/** Pieces of an RPC URL long enough to be a key (16 characters or more), as written and decoded: path segments, query values, the password. */
function keyLikePieces(u: URL): string[] {
  const raw = [...u.pathname.split('/'), ...u.search.replace(/^\?/, '').split('&').map((pair) => pair.slice(pair.indexOf('=') + 1)), u.password];
  const out = new Set<string>();
  for (const piece of raw) {
    for (const form of [piece, safeDecode(piece)]) if (form.length >= 16) out.add(form);
  }
  return [...out];
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text.replace(/\+/g, ' '));
  } catch {
    return text;
  }
}
