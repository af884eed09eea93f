import { z } from 'zod';
import { SYNC_FREQUENCIES } from '../common/frequencies';
import { CURSOR_FIELD_TYPES, SYNC_TYPES } from './validation';

/**
 * The shapes the API answers with, as zod schemas: the OpenAPI document is generated from them, and
 * the tests parse real responses with them, so the document can't drift from what is sent.
 */

const timestamp = z.string().describe('ISO 8601 timestamp, UTC');

export const errorResponse = z
  .object({
    error: z.string().describe('machine-readable code, e.g. validation_error, source_error, not_found, conflict'),
    message: z.string(),
    details: z.array(z.object({ field: z.string().optional(), message: z.string() })),
  })
  .meta({ id: 'Error' });

export const schemaResponse = z
  .object({
    id: z.uuid(),
    source_id: z.uuid(),
    name: z.string().describe('the table name at the source'),
    table: z.string().describe('the warehouse table, {prefix}_{name} in snake case'),
    should_sync: z.boolean(),
    sync_type: z.enum(SYNC_TYPES).nullable(),
    sync_frequency: z.enum(SYNC_FREQUENCIES),
    incremental_field: z.string().nullable(),
    incremental_field_type: z.enum(CURSOR_FIELD_TYPES).nullable(),
    primary_key_columns: z.array(z.string()).nullable(),
    status: z.enum(['Running', 'Completed', 'Failed', 'Paused', 'Linked', 'not set up']).nullable(),
    last_synced_at: timestamp.nullable(),
    rows_synced: z.number().nullable(),
    latest_error: z.string().nullable(),
    columns: z
      .array(z.object({ name: z.string(), type: z.string(), inferred_type: z.string() }))
      .optional()
      .describe('linked file tables: the columns the warehouse reads the files as (type: the override, if any)'),
  })
  .meta({ id: 'Schema' });

export const schemaWithWarnings = schemaResponse.extend({ warnings: z.array(z.string()) }).meta({ id: 'SchemaWithWarnings' });

export const cdcMirrorResponse = z
  .object({
    workflow_id: z.string().describe('the mirror workflow in the Temporal UI'),
    status: z.string().describe('Starting, Snapshotting, Streaming, Paused, Resyncing, Stopped or Error'),
    paused: z.boolean(),
    slot_name: z.string(),
    publication_name: z.string(),
    checkpoint_lsn: z.string().nullable().describe('commit LSN up to which every change is in the warehouse'),
    changes_synced: z.number(),
    lag_bytes: z.number().nullable().describe('WAL the slot holds back (pg_wal_lsn_diff)'),
    lag_status: z.enum(['ok', 'warning', 'critical', 'unknown']),
    lag_checked_at: timestamp.nullable(),
    lag_seconds: z.number().nullable().describe("replication delay of the last transaction applied: its commit at the source to its landing in the warehouse (null until one is)"),
    last_commit_at: timestamp.nullable().describe("the source's commit time of the last transaction the warehouse has"),
    latest_error: z.string().nullable(),
    warnings: z.array(z.string()),
  })
  .meta({ id: 'CdcMirror' });

export const cdcActionResult = z
  .object({ paused: z.boolean().optional(), resyncing: z.boolean().optional(), warnings: z.array(z.string()) })
  .meta({ id: 'CdcActionResult' });

export const sourceResponse = z
  .object({
    id: z.uuid(),
    source_type: z.string(),
    prefix: z.string(),
    status: z.string().describe('Running, Completed, Error or Paused, from its schemas'),
    latest_error: z.string().nullable(),
    payload: z.record(z.string(), z.unknown()).describe('connection fields; secrets as "********"'),
    created_at: timestamp,
    updated_at: timestamp,
    last_successful_run: timestamp.nullable().optional(),
    schema_counts: z.object({ total: z.number(), enabled: z.number(), running: z.number(), failed: z.number() }).optional(),
    schemas: z.array(schemaResponse).optional(),
    cdc: cdcMirrorResponse.optional().describe('the CDC mirror, when the source has had CDC tables'),
  })
  .meta({ id: 'Source' });

export const createdSourceResponse = sourceResponse.extend({ warnings: z.array(z.string()) }).meta({ id: 'CreatedSource' });

export const discoveredTableResponse = z
  .object({
    table: z.string(),
    should_sync: z.literal(false),
    rows: z.number().nullable(),
    incremental_available: z.boolean(),
    append_available: z.boolean(),
    cdc_available: z.boolean().nullable(),
    supports_webhooks: z.boolean(),
    incremental_fields: z.array(z.object({ field: z.string(), type: z.enum(CURSOR_FIELD_TYPES), label: z.string(), nullable: z.boolean() })),
    detected_primary_keys: z.array(z.string()),
    available_columns: z.array(z.object({ field: z.string(), type: z.string(), nullable: z.boolean() })),
    description: z.string(),
    linked_available: z.boolean().optional().describe('Files sources: the table can be linked (sync_type "linked")'),
    files: z.object({ count: z.number(), bytes: z.number(), sample: z.array(z.string()) }).optional().describe('Files sources: what the path or glob matches now'),
  })
  .meta({ id: 'DiscoveredTable' });

export const linkedStatsResult = z
  .object({
    files: z.number().int(),
    bytes: z.number(),
    sample: z.array(z.string()),
    rows_estimate: z.number().nullable().describe('rows the engine counts now (null: disabled, or not counted within 30 s)'),
  })
  .meta({ id: 'LinkedStats' });

export const jobResponse = z
  .object({
    id: z.uuid(),
    schema_id: z.uuid(),
    source_id: z.uuid(),
    status: z.enum(['Running', 'Completed', 'Failed']),
    rows_synced: z.number(),
    started_at: timestamp,
    finished_at: timestamp.nullable(),
    duration_seconds: z.number().nullable(),
    latest_error: z.string().nullable(),
    warnings: z.array(z.string()),
    workflow_id: z.string().nullable(),
    workflow_run_id: z.string().nullable(),
  })
  .meta({ id: 'Job' });

const selected = z.object({ id: z.uuid(), name: z.string() });
const skipped = selected.extend({ reason: z.string() });

/** An admin operation (a workflow) still running when the API stopped waiting for it: it completes on its own. */
export const pendingOperation = z
  .object({ workflow_id: z.string(), status: z.literal('running'), leads_to: z.record(z.string(), z.unknown()) })
  .meta({ id: 'PendingOperation' });
export const bulkResult = z
  .object({ action: z.string(), applied: z.array(selected), skipped: z.array(skipped), operations: z.array(pendingOperation).optional() })
  .meta({ id: 'BulkResult' });
export const syncAllResult = z.object({ started: z.array(selected), skipped: z.array(skipped) }).meta({ id: 'SyncAllResult' });
export const cdcCheckResult = z.object({ valid: z.boolean(), errors: z.array(z.string()) }).meta({ id: 'CdcCheckResult' });
export const refreshResult = z.object({ added: z.array(schemaResponse), missing_at_source: z.array(z.string()) }).meta({ id: 'RefreshResult' });
export const deleteSourceResult = z
  .object({ id: z.uuid(), deleted: z.literal(true), dropped_tables: z.array(z.string()), warnings: z.array(z.string()) })
  .meta({ id: 'DeleteSourceResult' });
export const deleteSourcePending = z.object({ id: z.uuid(), deleted: z.literal(false), operation: pendingOperation }).meta({ id: 'DeleteSourcePending' });
export const syncTriggered = z.object({ schema_id: z.uuid(), triggered: z.literal(true) });
export const queryResult = z.object({
  columns: z.array(z.object({ name: z.string(), type: z.string() })),
  rows: z.array(z.record(z.string(), z.unknown())),
  row_count: z.number(),
});
/** `query` (its text with parameters, cut at 200 characters) only for a caller with the API token. */
const runningQuery = z.object({ session: z.string(), query: z.string().optional(), age_ms: z.number(), state: z.enum(['queued', 'running']) });
/** `degraded`: it does not answer a trivial request in time; `running` says what it is busy with (the warehouse). */
const partStatus = z.object({
  mode: z.enum(['embedded', 'remote']),
  status: z.enum(['ok', 'degraded', 'error']),
  error: z.string().optional(),
  running: z.array(runningQuery).optional(),
});
export const healthResult = z.object({ status: z.enum(['ok', 'degraded']), temporal: partStatus, warehouse: partStatus, catalog: partStatus });
export const sourceTypesResult = z.record(
  z.string(),
  z.object({
    name: z.string(),
    label: z.string(),
    caption: z.string(),
    fields: z.array(
      z.object({
        name: z.string(),
        label: z.string(),
        type: z.enum(['input', 'password', 'switch', 'select', 'file-upload']),
        required: z.boolean(),
        placeholder: z.string().optional(),
        options: z.array(z.object({ label: z.string(), value: z.string() })).optional(),
        secret: z.boolean().optional(),
      }),
    ),
    featured: z.boolean(),
    unreleasedSource: z.boolean(),
  }),
);
export const webhookRegisterResult = z
  .object({
    success: z.boolean(),
    webhook_url: z.string(),
    error: z.string().nullable().describe('why registration failed (e.g. the permission the key lacks), or what is left to do'),
    already_registered: z.boolean().describe('an endpoint existed: no second one was created'),
  })
  .meta({ id: 'WebhookRegisterResult' });
export const webhookInfoResult = z
  .object({
    supports_webhooks: z.boolean(),
    exists: z.boolean(),
    webhook_url: z.string().nullable(),
    schema_mapping: z.record(z.string(), z.uuid()).describe('event type → the schema it updates'),
    intake: z
      .object({ enabled: z.boolean(), reason: z.string().nullable(), events_applied: z.number(), last_event_at: timestamp.nullable() })
      .nullable(),
    external_status: z
      .object({ status: z.string(), url: z.string().nullable(), enabled_events: z.array(z.string()).nullable(), error: z.string().nullable() })
      .nullable()
      .describe("the endpoint as the source reports it"),
  })
  .meta({ id: 'WebhookInfo' });
export const webhookReceipt = z.object({ received: z.literal(true), duplicate: z.boolean().optional(), ignored: z.string().optional() }).meta({ id: 'WebhookReceipt' });
export const cdcLagHistoryResult = z
  .object({
    source_id: z.uuid(),
    hours: z.number(),
    results: z.array(z.object({ at: timestamp, lag_bytes: z.number().describe('WAL the slot held back at that moment') })),
  })
  .meta({ id: 'CdcLagHistory' });
export const platformInfoResult = z
  .object({
    temporal_ui_url: z.string().nullable().describe("the Temporal UI (the dev server's, or TEMPORAL_UI_URL); null when unknown"),
    temporal_namespace: z.string(),
  })
  .meta({ id: 'PlatformInfo' });
export const listOf = <T extends z.ZodType>(item: T) => z.object({ results: z.array(item) });
