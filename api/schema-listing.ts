import { frequencyMs, type SyncFrequency } from '../common/frequencies';
import type { SchemaRow } from '../catalog/schemas';
import { schemaStatus } from './present';
import type { SchemasQuery } from './schema-requests';

/**
 * Filtering and sorting of a source's schemas table (seed 000). A source has at most a few hundred
 * tables, so this runs over the catalog rows in memory rather than as dynamic SQL.
 */

const STATUS_ORDER = ['Running', 'Failed', 'Completed', 'Paused', 'not set up'];

/** Sort values: nulls (never synced, "never" frequency) always sort last, whatever the direction. */
function sortValue(s: SchemaRow, key: SchemasQuery['sort']): string | number | null {
  switch (key) {
    case 'name':
      return s.name.toLowerCase();
    case 'status': {
      const i = STATUS_ORDER.indexOf(schemaStatus(s) ?? '');
      return i < 0 ? null : i;
    }
    case 'frequency':
      return frequencyMs(s.sync_frequency as SyncFrequency) ?? null;
    case 'last_synced_at':
      return s.last_synced_at ? new Date(s.last_synced_at).getTime() : null;
    case 'rows_synced':
      return s.rows_synced === null ? null : Number(s.rows_synced);
  }
}

export function filterAndSortSchemas(rows: SchemaRow[], q: SchemasQuery): SchemaRow[] {
  const search = q.search?.trim().toLowerCase();
  const kept = rows.filter(
    (s) =>
      (q.status === undefined || schemaStatus(s) === q.status) &&
      (q.sync_type === undefined || (s.sync_type ?? 'none') === q.sync_type) &&
      (q.frequency === undefined || s.sync_frequency === q.frequency) &&
      (!q.enabled_only || s.should_sync) &&
      (!search || s.name.toLowerCase().includes(search)),
  );
  const dir = q.order === 'desc' ? -1 : 1;
  return kept.sort((a, b) => {
    const [va, vb] = [sortValue(a, q.sort), sortValue(b, q.sort)];
    if (va === null || vb === null) return va === vb ? a.name.localeCompare(b.name) : va === null ? 1 : -1;
    if (va < vb) return -dir;
    if (va > vb) return dir;
    return a.name.localeCompare(b.name);
  });
}
