/** Readable ids: the Temporal UI shows `sync-postgres_orders`, the warehouse table it fills. */
export const syncWorkflowId = (warehouseTable: string) => `sync-${warehouseTable}`;
export const syncScheduleId = (warehouseTable: string) => `sync-${warehouseTable}`;
