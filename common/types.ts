/** Types shared by workflows, activities and the API. Workflows import only from here (no I/O code). */

export interface SyncSchemaInput {
  schemaId: string;
}

export interface JobStarted {
  jobId: string;
  /** `_tributary_version` for the rows this run writes (a catalog sequence value, as a string: it is a bigint). */
  version: string;
  syncType: string;
  /** The load activity's heartbeat timeout, from the worker's configuration (absent in runs recorded before it: 30 s). */
  heartbeatTimeoutMs?: number;
}

export interface LoadResult {
  stagingTable: string;
  rows: number;
}

export interface SyncProgress {
  phase: 'loading' | 'publishing';
  rows: number;
  bytes: number;
  batches: number;
  /** The position the read reached (for a source that can resume a full refresh, e.g. Stripe's last id). */
  cursor?: string;
  /** A full refresh: the staging table holding the rows up to `cursor` (the attempt's own; a retry takes it over). */
  staging?: string;
}

export interface SyncResult {
  jobId: string;
  rows: number;
}

export interface IncrementalProgress extends SyncProgress {
  /** The cursor value reached by the last batch ClickHouse has (heartbeated: a retry resumes here). */
  cursor?: string;
  /** The exact read position after that batch (the cursor and key of its last row), when the read gives one. */
  resumeAfter?: string;
  /** What the read reported so far (kept across a retried attempt). */
  warnings?: string[];
  /** The engine's time (UTC) when the run began writing: its rows are the ones synced after it. */
  changesFrom?: string;
  /** A webhook table's refresh: the version its listed rows and deletions carry. */
  refreshVersion?: string;
}

export interface IncrementalResult {
  rows: number;
  cursor?: string;
  warnings: string[];
  /** For recording the run's changes (recordIncrementalChanges). */
  changesFrom?: string;
  refreshVersion?: string;
}

export interface CdcSourceInput {
  sourceId: string;
  /** Carried over continue-as-new, so a signal taken just before it is not lost. */
  paused?: boolean;
  resync?: boolean;
  /** Prepare/stream loops before continuing as new (default 40; TRIBUTARY_CDC_LOOPS_PER_RUN). */
  loopsPerRun?: number;
  /** Attempts of the streaming activity before the mirror shows Error (default 20; TRIBUTARY_CDC_STREAM_ATTEMPTS). */
  streamAttempts?: number;
  /** After those attempts ran out on an error that may pass, the mirror tries again this often (default 600; TRIBUTARY_CDC_RETRY_AFTER_ERROR_SECONDS). */
  retryAfterErrorSeconds?: number;
  /** A streaming activity silent this long is taken for dead and resumed elsewhere (default 20000; TRIBUTARY_STREAM_HEARTBEAT_TIMEOUT_MS). */
  heartbeatTimeoutMs?: number;
}

/** What prepareCdc found: the CDC tables, and those that need a snapshot before streaming. */
export interface CdcPlan {
  tables: string[];
  snapshot: { schemaId: string; name: string }[];
}

/** Heartbeat details of the streaming activity, as the Temporal UI shows them. */
export interface CdcStreamProgress {
  /** Commit LSN up to which every change is in the warehouse (and the slot acknowledged). */
  checkpoint: string | null;
  changes: number;
  lagBytes: number | null;
}

export interface CdcStreamResult {
  checkpoint: string | null;
  changes: number;
  warnings: string[];
}

export interface WebhookEventsInput {
  sourceId: string;
  /** Event ids received but not applied yet (carried over continue-as-new). */
  pending?: string[];
}
