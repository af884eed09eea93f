import { z } from 'zod';
import { SYNC_FREQUENCIES } from '../common/frequencies';
import { strictObject } from '../common/strict-object';

/** Request bodies, in seed 001's snake_case vocabulary. Every object refuses keys it does not know (common/strict-object). */

export const SYNC_TYPES = ['full_refresh', 'incremental', 'append', 'cdc', 'webhook', 'linked'] as const;
export const CURSOR_FIELD_TYPES = ['integer', 'numeric', 'date', 'timestamp', 'datetime'] as const;

export const schemaEntrySchema = strictObject({
  name: z.string().min(1, 'name is required'),
  should_sync: z.boolean(),
  sync_type: z.enum(SYNC_TYPES).nullish(),
  sync_frequency: z.enum(SYNC_FREQUENCIES).optional(),
  incremental_field: z.string().min(1).nullish(),
  incremental_field_type: z.enum(CURSOR_FIELD_TYPES).nullish(),
  primary_key_columns: z.array(z.string().min(1)).min(1).nullish(),
});
export type SchemaEntry = z.infer<typeof schemaEntrySchema>;

export const PREFIX_RE = /^[a-z][a-z0-9]*(_[a-z0-9]+)*$/;

export const createSourceSchema = strictObject({
  source_type: z.string().min(1, 'source_type is required'),
  prefix: z
    .string()
    .max(63, 'prefix must be at most 63 characters')
    .regex(PREFIX_RE, 'prefix must be lowercase letters, digits and single underscores, starting with a letter')
    .optional(),
  // Open here: the connection fields are the connector's, and its own strict schema checks them.
  payload: z.looseObject({
    schemas: z.array(schemaEntrySchema, 'schemas must be a list of table entries'),
  }),
});

export const querySchema = strictObject({
  sql: z.string().trim().min(1, 'sql is required').max(100_000, 'sql must be at most 100000 characters'),
});

export const jobsQuerySchema = strictObject({
  schema_id: z.uuid('schema_id must be a UUID').optional(),
  source_id: z.uuid('source_id must be a UUID').optional(),
  status: z.enum(['Running', 'Completed', 'Failed']).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

export const uuidSchema = z.uuid();

/**
 * POST /api/sources/db-schema and /check-cdc-prerequisites: `{ source_type, …connection fields }`, flat as in
 * seed 001. Open here: the connector's strict config schema refuses what is neither.
 */
export const connectionCheckSchema = z.looseObject({
  source_type: z.string('source_type is required').min(1, 'source_type is required'),
});

export const syncAllSchema = strictObject({
  confirm: z.literal(true, 'confirm must be true: this starts a sync of every enabled schema'),
});

export const booleanParam = (name: string) =>
  z.enum(['true', 'false'], `${name} must be true or false`).transform((v) => v === 'true');

export const deleteSourceQuerySchema = strictObject({
  delete_data: booleanParam('delete_data').optional(),
});

export const patchSourceSchema = strictObject({
  prefix: createSourceSchema.shape.prefix,
  // Open here: the changed fields are merged over the stored ones and checked by the connector's strict schema.
  payload: z.record(z.string(), z.unknown(), 'payload must be an object of connection fields').optional(),
}).refine((b) => b.prefix !== undefined || b.payload !== undefined, {
    message: 'give prefix or payload (the connection fields to change)',
    when: (p) => p.issues.length === 0,
  });

