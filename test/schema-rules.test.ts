import { ApiError } from '../api/errors';
import { requireDisableConfirmation } from '../api/schema-management';
import { validateSchemaEntries } from '../api/schema-rules';
import { ONE_MINUTE_ONLY_FOR_CDC } from '../common/frequencies';
import type { DiscoveredTable } from '../connectors/types';

/**
 * The rules the end-to-end tests can't reach through a Postgres source yet (no table offers CDC or
 * webhooks until those issues land): checked on the rule functions themselves.
 */
const table = (name: string, over: Partial<DiscoveredTable> = {}): DiscoveredTable => ({
  table: name,
  should_sync: false,
  rows: 10,
  incremental_available: true,
  append_available: true,
  cdc_available: true,
  supports_webhooks: true,
  incremental_fields: [{ field: 'id', type: 'integer', label: 'id', nullable: false }],
  detected_primary_keys: ['id'],
  available_columns: [{ field: 'id', type: 'bigint', nullable: false }, { field: 'note', type: 'text', nullable: true }],
  description: '',
  ...over,
});

function errorOf(fn: () => unknown): ApiError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ApiError) return err;
    throw err;
  }
  throw new Error('expected an ApiError');
}

describe('schema rules', () => {
  test('cdc: 1min allowed, primary_key_columns required and must exist', () => {
    const tables = [table('t')];
    const noKey = errorOf(() => validateSchemaEntries([{ name: 't', should_sync: true, sync_type: 'cdc', sync_frequency: '1min' }], tables));
    expect(noKey.details.map((d) => d.field)).toEqual(['payload.schemas.0.primary_key_columns']);
    const badKey = errorOf(() => validateSchemaEntries([{ name: 't', should_sync: true, sync_type: 'cdc', primary_key_columns: ['nope'] }], tables));
    expect(badKey.details[0].message).toMatch(/no such column: nope/);
  });

  test('sync types not implemented yet (webhook) are refused only after every rule passes', () => {
    const tables = [table('a'), table('b')];
    // A rule violation anywhere is reported first…
    const rules = errorOf(() =>
      validateSchemaEntries(
        [
          { name: 'a', should_sync: true, sync_type: 'cdc', primary_key_columns: ['id'] },
          { name: 'b', should_sync: true, sync_type: 'full_refresh', sync_frequency: '1min' },
        ],
        tables,
      ),
    );
    expect(rules.details).toEqual([{ field: 'payload.schemas.1.sync_frequency', message: `schema "b": ${ONE_MINUTE_ONLY_FOR_CDC}` }]);
    // …and only a body that breaks no rule learns that webhook is not available yet (cdc is).
    const later = errorOf(() =>
      validateSchemaEntries(
        [
          { name: 'a', should_sync: true, sync_type: 'cdc', primary_key_columns: ['id'], sync_frequency: '1min' },
          { name: 'b', should_sync: true, sync_type: 'webhook' },
        ],
        tables,
      ),
    );
    expect(later.details.map((d) => d.field)).toEqual(['payload.schemas.1.sync_type']);
    expect(later.message).toMatch(/"webhook" is not available yet/);
  });

  test('warnings: nullable cursor, nullable key', () => {
    const t = table('t', {
      incremental_fields: [{ field: 'seen', type: 'datetime', label: 'seen', nullable: true }],
      available_columns: [{ field: 'id', type: 'int', nullable: true }, { field: 'seen', type: 'timestamptz', nullable: true }],
    });
    expect(validateSchemaEntries([{ name: 't', should_sync: true, sync_type: 'incremental', incremental_field: 'seen', incremental_field_type: 'datetime' }], [t])).toEqual([
      'schema "t": incremental_field "seen" is nullable: rows where it is null are skipped',
      'schema "t": primary key column id is nullable: null values can cause deduplication issues',
    ]);
  });

  test('bulk disable of cdc or webhook schemas needs confirm: true', () => {
    const schemas = [
      { name: 'orders', should_sync: true, sync_type: 'cdc' },
      { name: 'charges', should_sync: true, sync_type: 'webhook' },
      { name: 'users', should_sync: true, sync_type: 'full_refresh' },
    ];
    const err = errorOf(() => requireDisableConfirmation(schemas, undefined));
    expect(err.status).toBe(400);
    expect(err.details).toEqual([{ field: 'confirm', message: 'must be true when cdc or webhook schemas are selected' }]);
    expect(err.message).toMatch(/"orders" \(cdc\), "charges" \(webhook\)/);
    expect(() => requireDisableConfirmation(schemas, true)).not.toThrow();
    expect(() => requireDisableConfirmation([schemas[2]], undefined)).not.toThrow();
  });
});
