import { AirlockError } from '@airlock/core';

/**
 * A store that cannot be opened at start-up, said in words an operator can act on: refused, unknown host,
 * unknown database, authentication. Built from the URL's host, port, database and user (never its password)
 * and the driver's error code. Anything else passes through unchanged.
 */
export function explainStoreFailure(e: unknown, storeUrl: string): unknown {
  if (!(e instanceof AirlockError) || e.code !== 'store_unavailable' || !storeUrl.startsWith('postgres')) return e;
  const cause = e.cause as { code?: string } | undefined;
  const url = URL.canParse(storeUrl) ? new URL(storeUrl) : undefined;
  const host = url ? `${url.hostname}:${url.port || '5432'}` : 'the configured host';
  const database = url ? decodedOrRaw(url.pathname.slice(1)) || 'postgres' : 'the configured database';
  const user = url?.username ? decodedOrRaw(url.username) : 'the default user';
  const explained = (message: string, ...hints: string[]) => new AirlockError('store_unavailable', message, { cause: e.cause, hints: [...hints, 'The store is AIRLOCK_STORE (or --store, or `store:` in the config file).'] });
  switch (cause?.code) {
    case 'ECONNREFUSED':
      return explained(`PostgreSQL refused the connection at ${host}.`, 'Is PostgreSQL running and listening on that address and port (listen_addresses, port)?');
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return explained(`The PostgreSQL host name in the store URL does not resolve (${url?.hostname ?? 'host'}).`, 'Check the host name, or use an IP address.');
    case 'ETIMEDOUT':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return explained(`No answer from PostgreSQL at ${host}.`, 'Check the address, routing and firewall between this host and the database.');
    case '3D000':
      return explained(`The database "${database}" does not exist on ${host}.`, `Create it (createdb -h ${url?.hostname ?? 'HOST'} ${database}) or fix the database name in the store URL.`);
    case '28P01':
      return explained(`PostgreSQL rejected the password for user "${user}" on ${host}.`, 'Check the password in the store URL (percent-encode special characters).');
    case '28000':
      return explained(`PostgreSQL refused user "${user}" on ${host}: the role does not exist or pg_hba.conf has no entry for this host, user and database.`, 'Create the role (CREATE ROLE … LOGIN) or add a pg_hba.conf line, then reload PostgreSQL.');
    case '57P03':
      return explained(`PostgreSQL at ${host} is starting up or shutting down.`, 'Retry in a moment.');
    case '53300':
      return explained(`PostgreSQL at ${host} has no connection slot left (too many clients).`, 'Raise max_connections or lower the number of instances; each instance opens up to 10 connections.');
    default:
      return e;
  }
}

/**
 * A URL part percent-decoded, or as written when it is not valid percent-encoding (`ops%team`): node-postgres keeps
 * such a part as written and connects with it, so its failure must still be explained (found by review: the
 * explanation threw `URIError: URI malformed` instead).
 */
function decodedOrRaw(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}
