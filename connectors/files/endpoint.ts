import dns from 'node:dns/promises';
import net from 'node:net';
import { addressRefusal, checkOutgoingUrl, type OutgoingPolicy } from '../../destinations/outgoing-network';
import { SourceError } from '../types';

/**
 * A custom S3-compatible endpoint is a URL the user gives and the engine connects to: the same SSRF rules as
 * destinations' (destinations/outgoing-network.ts), with their own switches. Link-local and cloud metadata
 * addresses are refused unless TRIBUTARY_FILES_ALLOW_LINK_LOCAL=1; private and loopback ones (a MinIO on the
 * private network) unless TRIBUTARY_FILES_ALLOW_PRIVATE=1. The name is resolved here and every address it gives
 * judged, so that a bad endpoint is told at once; the embedded engine's connections to a host name are judged
 * again, each when it is made, by the egress proxy they go through (warehouse/egress-proxy.ts), which a rebound
 * name cannot pass. Only the hosts of directHost (sql.ts), whose address no user can change, skip the proxy.
 */
export const FILES_ALLOW_PRIVATE_ENV = 'TRIBUTARY_FILES_ALLOW_PRIVATE';
export const FILES_ALLOW_LINK_LOCAL_ENV = 'TRIBUTARY_FILES_ALLOW_LINK_LOCAL';

const on = (env: NodeJS.ProcessEnv, name: string) => ['1', 'true', 'yes'].includes((env[name] ?? '').trim().toLowerCase());

export function filesEndpointPolicy(env: NodeJS.ProcessEnv = process.env): OutgoingPolicy {
  return { allowPrivate: on(env, FILES_ALLOW_PRIVATE_ENV), allowLinkLocal: on(env, FILES_ALLOW_LINK_LOCAL_ENV) };
}

/** A refusal of destinations/outgoing-network.ts's naming the files sources' switches instead of the destinations'. */
export const withSwitch = (why: string) => why.replace(/TRIBUTARY_DESTINATIONS_ALLOW_PRIVATE/g, FILES_ALLOW_PRIVATE_ENV).replace(/TRIBUTARY_DESTINATIONS_ALLOW_LINK_LOCAL/g, FILES_ALLOW_LINK_LOCAL_ENV);

export async function checkEndpoint(endpoint: string, policy: OutgoingPolicy = filesEndpointPolicy()): Promise<void> {
  const asWritten = checkOutgoingUrl(endpoint, policy);
  if (asWritten) throw new SourceError(`endpoint ${withSwitch(asWritten)}`, 'endpoint');
  const host = new URL(endpoint).hostname.replace(/^\[|\]$/g, '');
  if (net.isIP(host)) return;
  let addresses: { address: string }[];
  try {
    addresses = await dns.lookup(host, { all: true });
  } catch (err) {
    throw new SourceError(`endpoint host "${host}" does not resolve (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, 'endpoint');
  }
  for (const a of addresses) {
    const why = addressRefusal(a.address, policy);
    if (why) throw new SourceError(`endpoint host "${host}" resolves to ${withSwitch(why)}`, 'endpoint');
  }
}
