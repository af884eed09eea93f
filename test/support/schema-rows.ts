import type { SchemaRow } from '../../catalog/schemas';

/** Catalog schema rows for tests of pure functions: enabled, one source, created in order. */
export function schemaRows(partials: (Partial<SchemaRow> & { name: string })[]): SchemaRow[] {
  return partials.map((p, i) => ({
    id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
    source_id: '00000000-0000-4000-8000-aaaaaaaaaaaa',
    should_sync: true,
    sync_type: 'full_refresh',
    sync_frequency: '6hour',
    incremental_field: null,
    incremental_field_type: null,
    primary_key_columns: ['id'],
    status: null,
    last_synced_at: null,
    rows_synced: null,
    sync_cursor: null,
    latest_error: null,
    created_at: new Date(2026, 0, 1, 0, i),
    updated_at: new Date(2026, 0, 1, 0, i),
    ...p,
  }));
}
