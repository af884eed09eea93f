import { Client, Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { NativeConnection } from '@temporalio/worker';
import type { Logger } from '../platform/logger';
import { SEARCH_ATTRIBUTE_NAMES } from './search-attributes';

export interface TemporalTarget {
  address: string;
  namespace: string;
  tls: boolean;
  apiKey?: string;
  /** How long the first connection may take; unset: the SDK's 10 s (the embedded dev server's: DevServer). */
  connectTimeoutMs?: number;
}

const connectOptions = (t: TemporalTarget) => ({ address: t.address, tls: t.tls || undefined, apiKey: t.apiKey });

/** The platform connects its client first; the worker's native connection comes after, to a server that answers. */
export async function connectClient(t: TemporalTarget): Promise<Client> {
  const connection = await Connection.connect({ ...connectOptions(t), ...(t.connectTimeoutMs ? { connectTimeout: t.connectTimeoutMs } : {}) });
  return new Client({ connection, namespace: t.namespace });
}

export function connectWorker(t: TemporalTarget): Promise<NativeConnection> {
  return NativeConnection.connect(connectOptions(t));
}

/**
 * A cluster we did not start may lack our search attributes: register them (idempotent).
 * Temporal Cloud refuses this call; there they are added once in the Cloud UI.
 */
export async function ensureSearchAttributes(client: Client, namespace: string, log: Logger): Promise<void> {
  const { IndexedValueType } = temporal.api.enums.v1;
  try {
    const existing = await client.connection.operatorService.listSearchAttributes({ namespace });
    const missing = SEARCH_ATTRIBUTE_NAMES.filter((n) => !(n in (existing.customAttributes ?? {})));
    if (!missing.length) return;
    await client.connection.operatorService.addSearchAttributes({
      namespace,
      searchAttributes: Object.fromEntries(missing.map((n) => [n, IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD])),
    });
    log.info({ added: missing }, 'registered Temporal search attributes');
  } catch (err) {
    log.warn({ err: (err as Error).message }, 'could not register Temporal search attributes; add them on the cluster');
  }
}
