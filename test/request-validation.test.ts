import { fromZod } from '../api/errors';
import { bulkActionSchema, patchSchemaSchema } from '../api/schema-requests';
import { createSourceSchema, jobsQuerySchema, querySchema, syncAllSchema } from '../api/validation';
import { cdcCheckSchema } from '../api/routes/sources';
import { signingSecretSchema } from '../api/routes/webhooks';
import { postgresConfigSchema } from '../connectors/postgres/config';
import { stripeConfigSchema } from '../connectors/stripe/config';
import type { z } from 'zod';
import { connectors } from '../connectors/registry';

/** The 400 details a body gets: `[{ field, message }]`, as the API answers them. */
function details(schema: z.ZodType, body: unknown) {
  const parsed = schema.safeParse(body);
  if (parsed.success) throw new Error(`accepted: ${JSON.stringify(body)}`);
  return fromZod(parsed.error).details;
}

describe('unknown keys are refused, named, with the closest known one', () => {
  const entry = { name: 'items', should_sync: true, sync_type: 'full_refresh' };

  test('a schema entry inside the create body', () => {
    const body = { source_type: 'Postgres', payload: { host: 'h', schemas: [entry, { ...entry, sync_frequncy: '1hour' }] } };
    expect(details(createSourceSchema, body)).toEqual([
      { field: 'payload.schemas.1.sync_frequncy', message: 'unknown field "sync_frequncy": did you mean "sync_frequency"?' },
    ]);
  });

  test('the top level of the create body', () => {
    expect(details(createSourceSchema, { source_type: 'Postgres', prefx: 'pg', payload: { schemas: [] } })).toEqual([
      { field: 'prefx', message: 'unknown field "prefx": did you mean "prefix"?' },
    ]);
  });

  test('several unknown keys: one detail each; a key like no known one lists the known ones', () => {
    expect(details(querySchema, { sql: 'SELECT 1', limt: 5, zzzzzzzz: 1 })).toEqual([
      { field: 'limt', message: 'unknown field "limt" (known fields: sql)' },
      { field: 'zzzzzzzz', message: 'unknown field "zzzzzzzz" (known fields: sql)' },
    ]);
  });

  test('connection fields: the wizard field names are the known ones', () => {
    expect(details(postgresConfigSchema, { host: 'h', dbname: 'd', user: 'u', pasword: 'x' })).toEqual([
      { field: 'pasword', message: 'unknown field "pasword": did you mean "password"?' },
    ]);
    expect(details(stripeConfigSchema, { stripe_secret_key: 'sk_test_abc', stripe_acount_id: 'acct_1' })).toEqual([
      { field: 'stripe_acount_id', message: 'unknown field "stripe_acount_id": did you mean "stripe_account_id"?' },
    ]);
  });

  test("a connector's known connection fields are exactly the wizard's fields", () => {
    for (const c of Object.values(connectors)) {
      expect(Object.keys((c.configSchema as unknown as z.ZodObject).shape).sort()).toEqual(c.spec.fields.map((f) => f.name).sort());
    }
  });

  test('PATCH, bulk, sync-all, webhook inputs, CDC check, query string', () => {
    expect(details(patchSchemaSchema, { sync_frequncy: '1hour' })).toEqual([
      { field: 'sync_frequncy', message: 'unknown field "sync_frequncy": did you mean "sync_frequency"?' },
    ]);
    const id = '00000000-0000-4000-8000-000000000000';
    expect(details(bulkActionSchema, { action: 'set_frequency', schema_ids: [id], frequency: '1hour', frequncy: '1hour' })).toEqual([
      { field: 'frequncy', message: 'unknown field "frequncy": did you mean "frequency"?' },
    ]);
    expect(details(syncAllSchema, { confirm: true, confirmed: true })).toEqual([
      { field: 'confirmed', message: 'unknown field "confirmed": did you mean "confirm"?' },
    ]);
    expect(details(signingSecretSchema, { inputs: { signing_secret: 'whsec_x', signing_secrets: 'whsec_y' } })).toEqual([
      { field: 'inputs.signing_secrets', message: 'unknown field "signing_secrets": did you mean "signing_secret"?' },
    ]);
    expect(details(cdcCheckSchema, { source_type: 'Postgres', schemas: [{ name: 't', should_sync: true, synctype: 'cdc' }] })).toEqual([
      { field: 'schemas.0.synctype', message: 'unknown field "synctype": did you mean "sync_type"?' },
    ]);
    expect(details(jobsQuerySchema, { staus: 'Failed' })).toEqual([{ field: 'staus', message: 'unknown field "staus": did you mean "status"?' }]);
  });

  test('the message of the whole error names the path and the suggestion', () => {
    const parsed = createSourceSchema.safeParse({ source_type: 'Postgres', payload: { schemas: [{ ...entry, sync_frequncy: '1hour' }] } });
    expect(fromZod(parsed.error!).message).toBe('payload.schemas.0.sync_frequncy: unknown field "sync_frequncy": did you mean "sync_frequency"?');
  });

  test('known keys still pass, and connection fields stay open in the create body (the connector checks them)', () => {
    expect(createSourceSchema.safeParse({ source_type: 'Postgres', payload: { host: 'h', schemas: [{ ...entry, sync_frequency: '1hour' }] } }).success).toBe(true);
    expect(cdcCheckSchema.safeParse({ source_type: 'Postgres', host: 'h', tables: ['t'], schemas: [{ ...entry, sync_frequency: '1hour' }] }).success).toBe(true);
  });
});
