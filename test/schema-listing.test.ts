import { filterAndSortSchemas } from '../api/schema-listing';
import { schemaRows } from './support/schema-rows';
import { syncBlocker } from '../api/sync-control';

/** The schemas table's filters and sorts (seed 000) over every status and sync type, on the function the route uses. */
describe('schema listing', () => {
  const rows = schemaRows([
    { name: 'a_running', sync_type: 'incremental', status: 'Running', sync_frequency: '1hour', rows_synced: 10 },
    { name: 'b_failed', sync_type: 'full_refresh', status: 'Failed', sync_frequency: '5min', rows_synced: null },
    { name: 'c_paused', sync_type: 'append', status: 'Completed', should_sync: false, sync_frequency: '24hour', rows_synced: 5 },
    { name: 'd_cdc', sync_type: 'cdc', status: 'Completed', sync_frequency: '1min', rows_synced: 99 },
    { name: 'e_webhook', sync_type: 'webhook', status: 'Completed', sync_frequency: 'never', rows_synced: 7 },
    { name: 'f_unset', sync_type: null, status: null, should_sync: false, sync_frequency: '6hour', rows_synced: null },
  ]);
  const names = (q: Parameters<typeof filterAndSortSchemas>[1]) => filterAndSortSchemas(rows, q).map((s) => s.name);
  const base = { sort: 'name', order: 'asc' } as const;

  test('every status and every sync type filters', () => {
    expect(names({ ...base, status: 'Running' })).toEqual(['a_running']);
    expect(names({ ...base, status: 'Failed' })).toEqual(['b_failed']);
    expect(names({ ...base, status: 'Paused' })).toEqual(['c_paused']);
    expect(names({ ...base, status: 'Completed' })).toEqual(['d_cdc', 'e_webhook']);
    expect(names({ ...base, status: 'not set up' })).toEqual(['f_unset']);
    for (const [type, expected] of [['incremental', 'a_running'], ['full_refresh', 'b_failed'], ['append', 'c_paused'], ['cdc', 'd_cdc'], ['webhook', 'e_webhook'], ['none', 'f_unset']] as const) {
      expect(names({ ...base, sync_type: type })).toEqual([expected]);
    }
    expect(names({ ...base, enabled_only: true })).toEqual(['a_running', 'b_failed', 'd_cdc', 'e_webhook']);
    expect(names({ ...base, frequency: '1min' })).toEqual(['d_cdc']);
  });

  test('sort by frequency and status, both directions; never-synced and "never" last', () => {
    expect(names({ sort: 'frequency', order: 'asc' })).toEqual(['d_cdc', 'b_failed', 'a_running', 'f_unset', 'c_paused', 'e_webhook']);
    expect(names({ sort: 'frequency', order: 'desc' })).toEqual(['c_paused', 'f_unset', 'a_running', 'b_failed', 'd_cdc', 'e_webhook']);
    expect(names({ sort: 'status', order: 'asc' })).toEqual(['a_running', 'b_failed', 'd_cdc', 'e_webhook', 'c_paused', 'f_unset']);
    expect(names({ sort: 'rows_synced', order: 'desc' }).slice(-2)).toEqual(['b_failed', 'f_unset']);
  });

  test('sync-all and sync_now skip what cannot run, saying why', () => {
    const reasons = Object.fromEntries(rows.map((s) => [s.name, syncBlocker(s) ?? null]));
    expect(reasons).toEqual({ a_running: 'already syncing', b_failed: null, c_paused: 'disabled', d_cdc: null, e_webhook: null, f_unset: 'disabled' });
    expect(syncBlocker({ ...rows[5], should_sync: true })).toBe('no sync method configured');
  });
});
