/**
 * The shapes every destination type shares (the webhook is the first). Workflows import only types from here.
 * The catalog row is `DestinationRow` (catalog/destinations.ts); the change it delivers is warehouse/change-log.ts's
 * `ChangeRow`.
 */
export type ChangeOperation = 'insert' | 'update' | 'delete';

export const DESTINATION_METHODS = ['POST', 'PUT', 'PATCH', 'GET', 'DELETE'] as const;
export type DestinationMethod = (typeof DESTINATION_METHODS)[number];

export interface DestinationFilters {
  /** Only changes of this source's tables. */
  source_id?: string;
  /** Warehouse table names (e.g. `shop_orders`); empty or absent: every table. */
  tables?: string[];
  /** Empty or absent: every operation. */
  operations?: ChangeOperation[];
  /** A ClickHouse SQL boolean expression over the row's columns (destinations/filter.ts). */
  expression?: string;
}

/** What the catalog stores in clear for a webhook destination (config jsonb). */
export interface WebhookDestinationConfig {
  url: string;
  method: DestinationMethod;
  /** Header values not secret, as given. */
  headers: Record<string, string>;
  /** Names of the headers whose values are sealed (shown masked). */
  secret_headers: string[];
  /** A json-e template rendered per change (destinations/template.ts); undefined: the change itself. */
  body?: unknown;
  filters: DestinationFilters;
  /** 1: a request per change; more: one request carrying an array of up to this many rendered bodies. */
  batch_size: number;
  timeout_ms: number;
}

/** What is sealed (secrets column). */
export interface DestinationSecrets {
  headers: Record<string, string>;
  /** Standard Webhooks signing secret, `whsec_` + base64 of the key bytes. */
  signing_secret: string;
}

export type HealthState = 'healthy' | 'degraded' | 'disabled_temporarily' | 'disabled';

/** The json-e context one change renders with. */
export interface ChangeContext {
  /** The change's stable id (also the Standard Webhooks `webhook-id` of a one-change request). */
  id: string;
  table: string;
  source_id: string;
  op: ChangeOperation;
  key: Record<string, unknown>;
  row: Record<string, unknown>;
  old_row: Record<string, unknown> | null;
  version: string;
  landed_at: string;
}

/** The delivery workflow's input: ids and numbers only, never a secret. */
export interface DeliverDestinationInput {
  destinationId: string;
  /** Loops of the workflow before it continues as new (TRIBUTARY_DESTINATION_LOOPS_PER_RUN; default 50). */
  loopsPerRun?: number;
  /** The delivery activity silent this long is taken for dead and resumed elsewhere (default 20000; TRIBUTARY_STREAM_HEARTBEAT_TIMEOUT_MS). */
  heartbeatTimeoutMs?: number;
}
