import { Context } from '@temporalio/activity';
import { finishJob, startJob } from '../catalog/jobs';
import { markSchemaCompleted, markSchemaFailed, markSchemaRunning } from '../catalog/schemas';
import type { JobStarted, LoadResult, SyncProgress } from '../common/types';
import { createTableSql, dropTable, swapIn } from '../warehouse/tables';
import { loadSchemaContext, stagingTableName, type ActivityDeps } from './context';
import { pipelined } from './pipeline';

export function createSyncActivities(deps: ActivityDeps) {
  const { catalog, warehouse } = deps;

  return {
    async beginJob(schemaId: string): Promise<JobStarted> {
      const { schema } = await loadSchemaContext(deps, schemaId);
      const execution = Context.current().info.workflowExecution;
      if (!execution) throw new Error('beginJob runs only inside a workflow');
      const { workflowId, runId } = execution;
      const job = await startJob(catalog.db, { schemaId, sourceId: schema.source_id, workflowId, runId });
      await markSchemaRunning(catalog.db, schemaId);
      return { jobId: job.id, version: String(job.sync_version), syncType: schema.sync_type ?? 'full_refresh' };
    },

    /** Streams the whole table into a fresh staging table; the live table is untouched until publish. */
    async loadFullRefresh(schemaId: string, jobId: string, version: string): Promise<LoadResult> {
      const ctx = Context.current();
      const { schema, connector, config, targetTable } = await loadSchemaContext(deps, schemaId);
      const staging = stagingTableName(targetTable, jobId);
      const columns = await connector.describe(config, schema.name);
      const primaryKey = (schema.primary_key_columns ?? []).flatMap((k) => columns.filter((c) => c.sourceName === k).map((c) => c.name));

      await dropTable(warehouse, staging); // a retried attempt starts the load over
      // Keyed tables are ReplacingMergeTree so `FINAL` reads the same for every sync type; a table
      // without a key can't be deduplicated safely and stays a plain MergeTree.
      const engine = primaryKey.length ? ('ReplacingMergeTree' as const) : ('MergeTree' as const);
      await warehouse.command(createTableSql(warehouse.database, staging, columns, { kind: engine, orderBy: primaryKey }));

      const progress: SyncProgress = { phase: 'loading', rows: 0, bytes: 0, batches: 0 };
      ctx.heartbeat(progress);
      const batches = connector.read(config, { table: schema.name, mode: 'full_refresh', columns, version: BigInt(version) });
      await pipelined(batches, async (batch) => {
        await warehouse.insertBytes(staging, batch.columns, batch.data, { format: batch.format });
        progress.rows += batch.rows;
        progress.bytes += batch.data.length;
        progress.batches += 1;
        ctx.heartbeat(progress);
      });
      deps.log.info({ schemaId, jobId, table: targetTable, rows: progress.rows, bytes: progress.bytes }, 'table loaded');
      return { stagingTable: staging, rows: progress.rows };
    },

    /** EXCHANGE TABLES: readers see the old table or the new one, never a half-loaded one. */
    async publishTable(schemaId: string, stagingTable: string): Promise<void> {
      const { targetTable } = await loadSchemaContext(deps, schemaId);
      await swapIn(warehouse, stagingTable, targetTable);
    },

    async completeJob(schemaId: string, jobId: string, rows: number): Promise<void> {
      await finishJob(catalog.db, jobId, { status: 'Completed', rows });
      await markSchemaCompleted(catalog.db, schemaId, rows);
    },

    async failJob(schemaId: string, jobId: string, error: string): Promise<void> {
      await finishJob(catalog.db, jobId, { status: 'Failed', rows: 0, error });
      await markSchemaFailed(catalog.db, schemaId, error);
      const ctx = await loadSchemaContext(deps, schemaId).catch(() => undefined);
      if (ctx) await dropTable(warehouse, stagingTableName(ctx.targetTable, jobId));
    },
  };
}
