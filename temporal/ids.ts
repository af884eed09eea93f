/**
 * Temporal ids are named after catalog ids, never after a prefix or table name: a prefix change then
 * renames nothing in Temporal (a schedule keeps its id, its history and its place in the UI). The readable
 * name (`postgres_orders`, the warehouse table) goes in the summary, the memo and the search attributes.
 */
export const syncScheduleId = (schemaId: string) => `sync-${schemaId}`;
/** Schedules append the start time to it: `sync-<schema id>-2026-01-01T00:00:00Z`. */
export const syncWorkflowId = (schemaId: string) => `sync-${schemaId}`;
/** Before ids followed the catalog, a schedule was named after its table: removed when its successor is created. */
export const legacySyncScheduleId = (warehouseTable: string) => `sync-${warehouseTable}`;

/** One admin operation at a time per source (prefix change, deletion) and per schema (data reset): the id is the lock. */
export const sourceAdminWorkflowId = (sourceId: string) => `source-admin-${sourceId}`;
export const schemaAdminWorkflowId = (schemaId: string) => `schema-admin-${schemaId}`;

