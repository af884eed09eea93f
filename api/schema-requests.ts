import { z } from 'zod';
import { SYNC_FREQUENCIES } from '../common/frequencies';
import { strictObject } from '../common/strict-object';
import { SYNC_TYPES, booleanParam, schemaEntrySchema } from './validation';

/** Request shapes of the schema-management routes (PATCH /api/schemas/:id, bulk actions, list filters). */

export const patchSchemaSchema = strictObject({
  should_sync: z.boolean('should_sync must be true or false').optional(),
  sync_type: schemaEntrySchema.shape.sync_type,
  sync_frequency: z.enum(SYNC_FREQUENCIES).optional(),
  incremental_field: schemaEntrySchema.shape.incremental_field,
  incremental_field_type: schemaEntrySchema.shape.incremental_field_type,
  primary_key_columns: schemaEntrySchema.shape.primary_key_columns,
  /** Linked tables: ClickHouse types over the inferred ones, by column name (null: back to the inferred type). */
  column_types: z.record(z.string(), z.string().min(1).nullable(), 'column_types must be an object of column name to ClickHouse type').optional(),
  // Only when the keys themselves are valid, so an unknown key is reported alone.
}).refine((b) => Object.keys(b).length > 0, { message: 'give at least one setting to change', when: (p) => p.issues.length === 0 });
export type PatchSchemaBody = z.infer<typeof patchSchemaSchema>;

const schemaIds = z.array(z.uuid('each schema id must be a UUID'), 'schema_ids must be a list of schema ids').min(1, 'select at least one schema').max(1000);

/** One shape per action, so an action's own fields are required where it needs them. */
export const bulkActionSchema = z.discriminatedUnion(
  'action',
  [
    strictObject({ action: z.literal('disable'), schema_ids: schemaIds, confirm: z.boolean().optional() }),
    strictObject({ action: z.literal('set_frequency'), schema_ids: schemaIds, frequency: z.enum(SYNC_FREQUENCIES) }),
    strictObject({ action: z.literal('sync_now'), schema_ids: schemaIds }),
    strictObject({ action: z.literal('delete_tables'), schema_ids: schemaIds, confirm: z.boolean().optional() }),
    strictObject({ action: z.literal('delete_and_resync'), schema_ids: schemaIds, confirm: z.boolean().optional() }),
  ],
  'action must be one of disable, set_frequency, sync_now, delete_tables, delete_and_resync (there is no bulk enable)',
);
export type BulkAction = z.infer<typeof bulkActionSchema>;

export const SCHEMA_STATUSES = ['Running', 'Completed', 'Failed', 'Paused', 'Linked', 'not set up'] as const;
export const SCHEMA_SORT_KEYS = ['name', 'status', 'frequency', 'last_synced_at', 'rows_synced'] as const;

export const schemasQuerySchema = strictObject({
  status: z.enum(SCHEMA_STATUSES).optional(),
  sync_type: z.enum([...SYNC_TYPES, 'none']).optional(),
  frequency: z.enum(SYNC_FREQUENCIES).optional(),
  search: z.string().max(200).optional(),
  enabled_only: booleanParam('enabled_only').optional(),
  sort: z.enum(SCHEMA_SORT_KEYS).default('name'),
  order: z.enum(['asc', 'desc']).default('asc'),
});
export type SchemasQuery = z.infer<typeof schemasQuerySchema>;

