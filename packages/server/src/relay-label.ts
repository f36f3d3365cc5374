/**
 * A relay URL fit for a log line or an error: `scheme://host[:port]`, nothing else. A relay may take an access
 * token in its query (or credentials in the URL), and log lines reach places the configuration does not: only
 * the WebSocket itself is given the whole URL.
 */
export function relayLabel(url: string): string {
  if (!URL.canParse(url)) return '(unparsable relay URL)';
  const u = new URL(url);
  return `${u.protocol}//${u.host}`;
}
