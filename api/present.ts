import { maskedConfig } from '../catalog';
import type { JobRow } from '../catalog/jobs';
import type { SchemaRow } from '../catalog/schemas';
import type { SourceRow, SourceSummary } from '../catalog/sources';
import { connectorFor } from '../connectors/registry';
import { warehouseTableName } from '../warehouse/tables';

/** The JSON shapes the API returns. Secrets leave only as "********". */

const iso = (d: Date | string | null) => (d === null ? null : new Date(d).toISOString());
const num = (v: string | number | null) => (v === null ? null : Number(v));

/**
 * A schema's status as the schemas table shows it: the last run's (Running / Completed / Failed) while
 * enabled; "Paused" when disabled; "not set up" while it has no sync method; null before the first run.
 */
export function schemaStatus(s: SchemaRow): string | null {
  if (!s.sync_type) return 'not set up';
  if (!s.should_sync) return 'Paused';
  if (s.sync_type === 'linked') return 'Linked';
  return s.status;
}

/** A source's status from its schemas': an error anywhere shows; then running; then done; no enabled schema is paused. */
export function sourceStatus(summary: SourceSummary | undefined): string {
  if (!summary || summary.enabled === 0) return 'Paused';
  if (summary.failed > 0) return 'Error';
  if (summary.running > 0) return 'Running';
  return summary.last_successful_run ? 'Completed' : 'Running';
}

export function presentSource(source: SourceRow, schemas?: SchemaRow[], summary?: SourceSummary) {
  return {
    id: source.id,
    source_type: source.source_type,
    prefix: source.prefix,
    status: summary ? sourceStatus(summary) : source.status,
    last_successful_run: summary ? iso(summary.last_successful_run) : undefined,
    schema_counts: summary ? { total: summary.total, enabled: summary.enabled, running: summary.running, failed: summary.failed } : undefined,
    latest_error: source.latest_error,
    payload: maskedConfig(connectorFor(source.source_type)?.spec, source),
    created_at: iso(source.created_at),
    updated_at: iso(source.updated_at),
    ...(schemas ? { schemas: schemas.map((s) => presentSchema(source, s)) } : {}),
  };
}

export function presentSchema(source: SourceRow, s: SchemaRow) {
  return {
    id: s.id,
    source_id: s.source_id,
    name: s.name,
    table: warehouseTableName(source.prefix, s.name),
    should_sync: s.should_sync,
    sync_type: s.sync_type,
    sync_frequency: s.sync_frequency,
    incremental_field: s.incremental_field,
    incremental_field_type: s.incremental_field_type,
    primary_key_columns: s.primary_key_columns,
    status: schemaStatus(s),
    last_synced_at: iso(s.last_synced_at),
    rows_synced: num(s.rows_synced),
    latest_error: s.latest_error,
    ...(s.sync_type === 'linked' || s.linked_columns
      ? {
          columns: (s.linked_columns ?? []).map((c) => ({ name: c.name, type: s.linked_type_overrides?.[c.name] ?? c.type, inferred_type: c.type })),
        }
      : {}),
  };
}

export function presentJob(j: JobRow) {
  const finished = j.finished_at ? new Date(j.finished_at).getTime() : undefined;
  return {
    id: j.id,
    schema_id: j.schema_id,
    source_id: j.source_id,
    status: j.status,
    rows_synced: Number(j.rows_synced),
    started_at: iso(j.started_at),
    finished_at: iso(j.finished_at),
    duration_seconds: finished === undefined ? null : (finished - new Date(j.started_at).getTime()) / 1000,
    latest_error: j.latest_error,
    warnings: j.warnings,
    workflow_id: j.workflow_id,
    workflow_run_id: j.workflow_run_id,
  };
}
