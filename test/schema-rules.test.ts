import { ApiError } from '../api/errors';
import { requireDisableConfirmation } from '../api/schema-management';
import { validateSchemaEntries } from '../api/schema-rules';
import { ONE_MINUTE_ONLY_FOR_CDC } from '../common/frequencies';
import type { DiscoveredTable } from '../connectors/types';

/**
 * Rules checked on the rule functions themselves, with tables of any shape (the end-to-end tests reach
 * them through real Postgres and Stripe sources too).
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

  test('webhook: allowed on a table that supports webhooks, refused (naming the schema) where it does not', () => {
    expect(validateSchemaEntries([{ name: 'a', should_sync: true, sync_type: 'webhook' }], [table('a')])).toEqual([]);
    const refused = errorOf(() => validateSchemaEntries([{ name: 'a', should_sync: true, sync_type: 'webhook' }], [table('a', { supports_webhooks: false })]));
    expect(refused.details).toEqual([{ field: 'payload.schemas.0.sync_type', message: 'schema "a": this source does not support webhooks' }]);
    // The frequency rule holds for webhook tables too: their schedule is a polling safety net.
    const fast = errorOf(() => validateSchemaEntries([{ name: 'a', should_sync: true, sync_type: 'webhook', sync_frequency: '1min' }], [table('a')]));
    expect(fast.details).toEqual([{ field: 'payload.schemas.0.sync_frequency', message: `schema "a": ${ONE_MINUTE_ONLY_FOR_CDC}` }]);
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
