import type { z } from 'zod';
import type { Warehouse } from '../warehouse/client';
import type { WarehouseColumn } from '../warehouse/columns';

/**
 * The connector contract, shaped like the Airbyte protocol: spec / check / discover / read.
 * A connector is one folder under connectors/ that exports a `Connector`; workflows never change for it.
 */

export type FieldType = 'input' | 'password' | 'switch' | 'select' | 'file-upload';

export interface SpecField {
  name: string;
  label: string;
  type: FieldType;
  required: boolean;
  placeholder?: string;
  options?: { label: string; value: string }[];
  /** Stored encrypted and masked in every response (always true for `password`). */
  secret?: boolean;
}

/** The wizard entry of seed 001. */
export interface ConnectorSpec {
  name: string;
  label: string;
  caption: string;
  fields: SpecField[];
  featured: boolean;
  unreleasedSource: boolean;
}

export type SyncType = 'full_refresh' | 'incremental' | 'append' | 'cdc' | 'webhook' | 'linked';
export type CursorFieldType = 'integer' | 'numeric' | 'date' | 'timestamp' | 'datetime';

/** One discovered table, in exactly the shape of seed 001's db-schema entry. */
export interface DiscoveredTable {
  table: string;
  should_sync: false;
  rows: number | null;
  incremental_available: boolean;
  append_available: boolean;
  cdc_available: boolean | null;
  supports_webhooks: boolean;
  incremental_fields: { field: string; type: CursorFieldType; label: string; nullable: boolean }[];
  detected_primary_keys: string[];
  available_columns: { field: string; type: string; nullable: boolean }[];
  description: string;
  /** Files sources: the table can be linked (read from storage on every query; sync_type "linked"). */
  linked_available?: boolean;
  /** Files sources: what the table's path or glob matches now. */
  files?: { count: number; bytes: number; sample: string[] };
}

/** What some connectors need besides their config: the Files connector asks the warehouse engine to read storage. */
export interface ConnectorContext {
  warehouse: Warehouse;
}

export interface ReadRequest {
  table: string;
  mode: SyncType;
  /** The warehouse columns from `describe`, in the order values must be rendered. */
  columns: WarehouseColumn[];
  /** Constant `_tributary_version` for every row of this read (batch syncs). */
  version: bigint;
  /** Cursor column and the value reached by the last completed run (incremental / append). */
  cursorField?: string;
  cursor?: string;
  /** Primary-key columns (source names): the tie-break after the cursor, for a stable row order. */
  orderKey?: string[];
  /**
   * A retried attempt's exact position in the read order (a batch's `resumeAfter`): the read starts after it,
   * instead of at `cursor`. It exists because a cursor value alone cannot say where inside a run of equal values
   * the last batch ended.
   */
  resumeAfter?: string;
  batchBytes?: number;
  /** Called while the read waits on the source (a rate limit): the activity heartbeats, so it is not taken for dead. */
  heartbeat?: () => void;
}

/**
 * A batch of rows as bytes in a ClickHouse input format, with the columns they fill in order.
 * `cursor` is the cursor value reached at the batch's last row (incremental / append).
 */
export interface Batch {
  format: 'TabSeparated';
  columns: string[];
  data: Buffer;
  rows: number;
  /**
   * The position reached once this batch is in the warehouse: incremental / append store it as the cursor; any
   * read may use it to resume a retried attempt (it comes back as `ReadRequest.cursor`).
   */
  cursor?: string;
  /**
   * Where exactly the read stands after this batch, when the cursor value alone cannot say it (rows sharing the
   * last row's cursor value may follow): a retried attempt passes it back as `ReadRequest.resumeAfter`.
   */
  resumeAfter?: string;
  /**
   * After this batch: mark deleted every live row whose `_tributary_version` is below this one (a refresh in place
   * wrote every row the source still has at this version; the rest are gone at the source).
   */
  tombstoneBefore?: bigint;
  /** Something the job should report (e.g. a fallback to a full refresh). */
  warning?: string;
}

/** A table as a change stream sees it: its warehouse columns in the order change fields come. */
export interface CdcRelation {
  table: string;
  columns: WarehouseColumn[];
  keyColumns: string[];
}

/**
 * What a change stream delivers, in source commit order. `fields` are escaped TabSeparated values
 * aligned with the relation's columns; `undefined` marks a value the source did not send (an
 * unchanged TOASTed value). `lsn` orders changes and becomes `_tributary_version`.
 */
export type CdcEvent =
  | { type: 'relation'; relation: CdcRelation }
  /**
   * `op` as the source logged it (`upsert` when a source cannot tell an insert from an update). A delete's
   * `keyOnly`: only the key's values are known (the others are placeholders), else `fields` is the whole old row.
   */
  | { type: 'change'; op: 'insert' | 'update' | 'upsert' | 'delete'; table: string; lsn: bigint; fields: (string | undefined)[]; keyOnly?: boolean }
  | { type: 'truncate'; tables: string[]; lsn: bigint }
  /** A transaction committed; `lsn` (its end) is a position that is safe to checkpoint; `commitTime`: when, by the source's clock. */
  | { type: 'commit'; lsn: bigint; commitTime?: Date }
  /** The server's position; `idle`: every change received has been handed over and no transaction is open. */
  | { type: 'keepalive'; lsn: bigint; idle: boolean; mustReply: boolean };

export interface CdcStream {
  /** Settles when the stream ends (stopped, or failed). */
  done: Promise<void>;
  /** Tells the source every change up to `lsn` is durable: it may free that log. */
  acknowledge(lsn: bigint): void;
  stop(): Promise<void>;
}

/** Change data capture, for sources that offer it (sync_type "cdc"). */
export interface CdcCapability<Config = Record<string, unknown>> {
  /** Sets up what the source needs to stream `tables` (slot, publication); `slotCreated`: every table needs a snapshot. */
  prepare(config: Config, sourceId: string, tables: string[]): Promise<{ slotCreated: boolean }>;
  slotStatus(config: Config, sourceId: string): Promise<{ exists: boolean; lagBytes: number | null; walStatus: string | null; active: boolean }>;
  stream(
    config: Config,
    opts: {
      sourceId: string;
      startLsn: bigint | null;
      primaryKey(table: string): string[] | undefined;
      onEvent(event: CdcEvent): void | Promise<void>;
    },
  ): Promise<CdcStream>;
}

/** A pushed event, verified: what the intake keeps in the raw history and hands to the source's workflow. */
export interface WebhookEvent {
  id: string;
  type: string;
  /** Unix seconds, at the source. */
  created: number;
  /** The table its object belongs to, if any. */
  table?: string;
  objectId?: string;
  /** The event exactly as delivered (JSON text). */
  payload: string;
}

/** A delivery that must not be applied: bad or missing signature, too old (a replay). */
export class WebhookRejected extends Error {}

export interface WebhookStatus {
  status: string;
  url: string | null;
  enabled_events: string[] | null;
  error: string | null;
}

/** Sources that push changes (sync_type "webhook"): registering the endpoint, verifying and applying deliveries. */
export interface WebhookCapability<Config = Record<string, unknown>> {
  /** The intake URL is `/webhooks/<intakePath>/<source id>`. */
  intakePath: string;
  /** The events that carry a table's changes. */
  eventTypes(table: string): string[];
  /** Creates the endpoint at the source, subscribed to the tables' events; returns its signing secret (null if the source gave none). */
  register(config: Config, url: string, tables: string[]): Promise<{ endpointId: string; secret: string | null; enabledEvents: string[] }>;
  /** Re-subscribes a registered endpoint to the tables' events (none: the endpoint is disabled); returns them. */
  update(config: Config, endpointId: string, tables: string[]): Promise<string[]>;
  /** The endpoint as the source sees it (found by URL when it was created by hand). */
  status(config: Config, endpoint: { endpointId: string | null; url: string }): Promise<WebhookStatus>;
  /** Deletes the endpoint Tributary registered; tolerates its absence. */
  unregister(config: Config, endpointId: string): Promise<void>;
  /** Verifies a delivery's signature on the raw body; throws WebhookRejected saying why. */
  verify(rawBody: Buffer, headers: Record<string, string | string[] | undefined>, secret: string): WebhookEvent;
  /**
   * Rows for `table` from stored event payloads, in any order: their versions decide which state stays.
   * `ranks` (from rankEvents) orders events within their second; an event without one sorts below every ranked one.
   */
  toBatch(table: string, payloads: string[], ranks?: Map<string, number>): Batch;
  /** Each event's rank within its creation second among `table`'s events (0: the newest), as the source orders them. */
  rankEvents?(config: Config, table: string, seconds: number[]): Promise<Map<string, number>>;
}

/**
 * The engine's own reader of one table's files (object storage or a local folder): an import is an
 * `INSERT … SELECT … FROM <from()>` run by the engine, never rows through JavaScript.
 */
export interface FileTableReader {
  /**
   * A table-function expression reading every file the table's pattern matches (its virtual columns `_path`,
   * `_size`, `_time` and, where `hasEtag`, `_etag` included), in `format` (default: the table's own).
   */
  from(format?: string): string;
  /** Whether `from()` has an `_etag` column (object storage: yes; a local folder: no). */
  hasEtag: boolean;
  /** Settings the read needs (e.g. hive partitioning, the CSV delimiter), for the statement's SETTINGS. */
  settings?: Record<string, string | number>;
}

/** Sources of files the engine reads itself: linked tables read them on every query, imported tables copy them. */
export interface FileTables<Config = Record<string, unknown>> {
  /** Prepares what the engine needs to reach the source (e.g. its encrypted named collection) and gives the reader. */
  reader(warehouse: Warehouse, source: { id: string; prefix: string }, config: Config, table: string): Promise<FileTableReader>;
}

export class SourceError extends Error {
  /** `message` is the source's own words, shown verbatim to the user. */
  constructor(message: string, readonly field?: string) {
    super(message);
    this.name = 'SourceError';
  }
}

/**
 * The source refused the credential or a permission it needs (an API's 401 / 403): no retry can fix that, so a sync
 * that meets it fails at once with these words instead of being retried by the activity.
 */
export class SourceRefused extends SourceError {
  constructor(message: string, field?: string) {
    super(message, field);
    this.name = 'SourceRefused';
  }
}

export interface Connector<Config = Record<string, unknown>> {
  spec: ConnectorSpec;
  /** Validates a payload's connection fields; field errors name the field. */
  configSchema: z.ZodType<Config>;
  /** Validates credentials against the live source; throws SourceError with the source's message. */
  check(config: Config, ctx?: ConnectorContext): Promise<void>;
  discover(config: Config, ctx?: ConnectorContext): Promise<DiscoveredTable[]>;
  /** The warehouse columns a table lands as (typed from the source). */
  describe(config: Config, table: string, ctx?: ConnectorContext): Promise<WarehouseColumn[]>;
  read(config: Config, request: ReadRequest): AsyncIterable<Batch>;
  /**
   * A full refresh's batches carry a position a retried attempt resumes from (an API listing): they are
   * loaded one by one. Otherwise (a database COPY) the whole read streams into one insert and a retry starts over.
   */
  fullRefreshResumes?: boolean;
  /** Rows an incremental or append read skips because their cursor is NULL (reported as a warning). */
  countNullCursor?(config: Config, table: string, cursorField: string): Promise<number>;
  cdc?: CdcCapability<Config>;
  /**
   * CDC pre-flight: what the source lacks for change data capture, each an actionable message ([] = ready).
   * `tables`: the tables chosen for CDC; omitted = every table the source would offer.
   */
  checkCdcPrerequisites?(config: Config, tables?: string[]): Promise<string[]>;
  /** Push delivery of changes (sync_type "webhook"). */
  webhooks?: WebhookCapability<Config>;
  /** Files the engine reads itself: imports load them with INSERT … SELECT (activities/files-import.ts), not read(). */
  files?: FileTables<Config>;
  /**
   * Undoes what the connector set up at the source (replication slot, publication, webhook) when the
   * source is deleted; must tolerate their absence.
   */
  cleanup?(config: Config, source: { id: string; prefix: string }): Promise<void>;
}

/** Names of the spec's fields that are secrets (stored encrypted, masked in responses). */
export function secretFieldNames(spec: ConnectorSpec): string[] {
  return spec.fields.filter((f) => f.secret || f.type === 'password').map((f) => f.name);
}
