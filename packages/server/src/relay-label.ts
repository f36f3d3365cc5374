/**
 * A relay URL fit for a log line or an error: `scheme://host[:port]`, nothing else. A relay may
 * take an access token in its query (or credentials in the URL), and log lines reach places the configuration does
 * not. The whole URL goes to the WebSocket and to the clients that must reach the same relay: the bunker:// and
 * NWC connection strings, the routes' `relays` and `switch_relays` carry it, so a relay credential is shared with
 * the agents and apps given them (found by review: this said only the WebSocket got it; docs/nostr.md).
 */
export function relayLabel(url: string): string {
  if (!URL.canParse(url)) return '(unparsable relay URL)';
  const u = new URL(url);
  return `${u.protocol}//${u.host}`;
}
