import { ApplicationFailure, Context } from '@temporalio/activity';
import { ScheduleNotFoundError, WorkflowNotFoundError } from '@temporalio/client';
import { unsealConfig } from '../catalog';
import { clearSnapshots, getCdcMirror } from '../catalog/cdc';
import { failJobs, openJobs } from '../catalog/jobs';
import {
  disableSourceSchemas,
  getSchema,
  listSchemas,
  markSchemaFailed,
  resetSchemaSyncState,
  updateSchemaSettings,
  type SchemaRow,
  type SchemaSettings,
} from '../catalog/schemas';
import { deleteSource, getSource, updateSource, type SourceRow } from '../catalog/sources';
import { getWebhook } from '../catalog/webhooks';
import { connectorFor } from '../connectors/registry';
import { signalCdc, terminateCdc } from '../temporal/cdc-mirrors';
import { liveSyncRuns, terminateRuns } from '../temporal/running-syncs';
import { applySchedule, deleteSchedule, holdSchedule, triggerSync, upsertSchedule } from '../temporal/schedules';
import { terminateWebhookWorkflow } from '../temporal/webhook-workflows';
import { existingTables, dropSchemaTables, dropTablesStartingWith, renameTables } from '../warehouse/table-admin';
import { dropTable, warehouseTableName } from '../warehouse/tables';
import { forgetWebhookEventsTable, webhookEventsTable } from '../warehouse/webhook-events';
import { stagingPrefix, testHold, type ActivityDeps } from './context';

/**
 * The steps of the admin workflows (workflows/source-admin.ts). Each is idempotent — a retry after a crash
 * finds its work done, or half done, and finishes it — and heartbeats on a timer, so a dead worker is
 * noticed at once. Temporal is reached through the worker's own client.
 */

/** How long after stopping a run its staging table is swept once more: past the sync activities' heartbeat timeout. */
export const STAGING_SWEEP_DELAY_MS = () => Number(process.env.TRIBUTARY_STAGING_SWEEP_DELAY_MS) || 45_000;

async function heartbeating<T>(fn: () => Promise<T>): Promise<T> {
  const ctx = Context.current();
  const timer = setInterval(() => ctx.heartbeat(), 2_000);
  try {
    return await fn();
  } finally {
    clearInterval(timer);
  }
}

const client = () => Context.current().client;
const taskQueue = () => Context.current().info.taskQueue;

export function createAdminActivities(deps: ActivityDeps) {
  const db = deps.catalog.db;

  async function sourceOrGone(sourceId: string): Promise<SourceRow> {
    const source = await getSource(db, sourceId);
    if (!source) throw ApplicationFailure.nonRetryable(`Source ${sourceId} no longer exists`, 'NotFound');
    return source;
  }
  async function schemaWithSource(schemaId: string): Promise<{ schema: SchemaRow; source: SourceRow }> {
    const schema = await getSchema(db, schemaId);
    if (!schema) throw ApplicationFailure.nonRetryable(`Schema ${schemaId} no longer exists`, 'NotFound');
    return { schema, source: await sourceOrGone(schema.source_id) };
  }
  async function liveRuns(source: SourceRow, schema: SchemaRow) {
    const jobs = await openJobs(db, schema.id);
    const runs = await liveSyncRuns(
      client(),
      source,
      schema,
      jobs.flatMap((j) => (j.workflow_id ? [{ workflowId: j.workflow_id, runId: j.workflow_run_id ?? undefined }] : [])),
    );
    return { jobs, runs };
  }

  /**
   * Renames the source's tables from one prefix to the other. Pair by pair, so a retry after a crash (or a
   * rename already done) is harmless: moved pairs are skipped, and only a pair with both names taken fails.
   */
  async function renamePrefix(source: SourceRow, from: string, to: string): Promise<string[]> {
    const names = [...(await listSchemas(db, source.id)).map((s) => s.name), 'webhook_events'];
    const pairs = names.map((n) => ({ from: warehouseTableName(from, n), to: warehouseTableName(to, n) }));
    const present = await existingTables(deps.warehouse, [...pairs.map((p) => p.from), ...pairs.map((p) => p.to)]);
    const clash = pairs.filter((p) => present.has(p.from) && present.has(p.to)).map((p) => p.to);
    if (clash.length) throw ApplicationFailure.nonRetryable(`warehouse tables already exist: ${clash.join(', ')}`, 'Conflict');
    const todo = pairs.filter((p) => present.has(p.from));
    // Staging tables left by runs that ended unseen (terminated in Temporal) would stay behind under the old
    // prefix: no run is in flight now, so they go.
    for (const p of pairs) await dropSchemaTables(deps.warehouse, p.from, { keepLive: true });
    await renameTables(deps.warehouse, todo);
    for (const p of pairs) forgetWebhookEventsTable(p.from);
    return pairs.filter((p) => present.has(p.from) || present.has(p.to)).map((p) => p.to);
  }

  return {
    async holdSourceSchedules(sourceId: string, why: string): Promise<void> {
      const source = await sourceOrGone(sourceId);
      for (const s of await listSchemas(db, sourceId)) await holdSchedule(client(), source, s, why);
    },

    async releaseSourceSchedules(sourceId: string): Promise<void> {
      const source = await sourceOrGone(sourceId);
      for (const s of await listSchemas(db, sourceId)) await applySchedule(client(), taskQueue(), source, s, { release: true });
    },

    /** Fails (to be retried) while a run of the source is in flight: a rename waits for it to finish. */
    async waitForNoRuns(sourceId: string): Promise<void> {
      const source = await sourceOrGone(sourceId);
      const busy: string[] = [];
      for (const s of await listSchemas(db, sourceId)) if ((await liveRuns(source, s)).runs.length) busy.push(s.name);
      if (busy.length) throw ApplicationFailure.retryable(`waiting for runs in flight to finish: ${busy.join(', ')}`, 'RunsInFlight');
    },

    async renameSourceTables(sourceId: string, from: string, to: string): Promise<string[]> {
      return heartbeating(async () => {
        const renamed = await renamePrefix(await sourceOrGone(sourceId), from, to);
        await testHold(deps, 'tables renamed');
        return renamed;
      });
    },

    async setSourcePrefix(sourceId: string, prefix: string): Promise<void> {
      try {
        await updateSource(db, sourceId, { prefix });
      } catch (err) {
        if ((err as { code?: string }).code === '23505') throw ApplicationFailure.nonRetryable(`prefix "${prefix}" is already used by another source`, 'Conflict');
        throw err;
      }
      deps.log.info({ sourceId, prefix }, 'source prefix changed');
    },

    /** The mirror writes to the renamed tables from its next stream on. */
    async sourceTablesChanged(sourceId: string): Promise<void> {
      const source = await sourceOrGone(sourceId);
      if (!(await listSchemas(db, sourceId)).some((s) => s.should_sync && s.sync_type === 'cdc')) return;
      await signalCdc(client(), taskQueue(), source, 'tablesChanged', { paused: (await getCdcMirror(db, sourceId))?.paused ?? false });
    },

    async holdSchema(schemaId: string, why: string): Promise<void> {
      const { schema, source } = await schemaWithSource(schemaId);
      await holdSchedule(client(), source, schema, why);
    },

    async releaseSchema(schemaId: string): Promise<void> {
      const { schema, source } = await schemaWithSource(schemaId);
      await applySchedule(client(), taskQueue(), source, schema, { release: true });
    },

    /**
     * Stops the schema's runs in flight and closes their jobs; drops the staging tables they left (and the
     * live table with the cursor when `dropData`). Returns the stopped runs' staging tables, swept again later.
     */
    async stopSchemaRuns(schemaId: string, opts: { why: string; dropData: boolean; deleteSchedule: boolean }) {
      return heartbeating(async () => {
        const { schema, source } = await schemaWithSource(schemaId);
        const table = warehouseTableName(source.prefix, schema.name);
        if (opts.deleteSchedule) await holdSchedule(client(), source, schema, opts.why);
        const { jobs, runs } = await liveRuns(source, schema);
        const stopped = await terminateRuns(client(), runs, opts.why);
        await failJobs(db, jobs.map((j) => j.id), `Cancelled: ${opts.why}`);
        // Only the stopped runs' own staging tables (every attempt's) are swept later: a run started after this one has its own.
        const staging = jobs.map((j) => stagingPrefix(table, j.id));
        // Every schedule is held and every run stopped: no staging table is in use now.
        await dropSchemaTables(deps.warehouse, table, { keepLive: !opts.dropData });
        if (opts.dropData) await resetSchemaSyncState(db, schemaId);
        else if (stopped) await markSchemaFailed(db, schemaId, `Cancelled: ${opts.why}`);
        if (opts.deleteSchedule) await deleteSchedule(client(), source, schema);
        return { stopped, staging, sweepAfterMs: STAGING_SWEEP_DELAY_MS() };
      });
    },

    async applySchemaSettings(schemaId: string, settings: SchemaSettings): Promise<void> {
      await updateSchemaSettings(db, schemaId, settings);
    },

    /**
     * After a reset: a CDC table (before or after) goes back to its mirror, with a new snapshot if its data
     * was dropped; any other enabled table starts a run when asked. Returns whether one was started.
     */
    async schemaReset(schemaId: string, opts: { start: boolean; dataDropped: boolean; wasCdc?: boolean }): Promise<boolean> {
      const { schema, source } = await schemaWithSource(schemaId);
      if (schema.sync_type === 'cdc' || opts.wasCdc) {
        if (opts.dataDropped) await clearSnapshots(db, [schemaId]);
        await signalCdc(client(), taskQueue(), source, 'tablesChanged', { paused: (await getCdcMirror(db, source.id))?.paused ?? false });
        return opts.start && schema.should_sync;
      }
      if (!opts.start || !schema.should_sync || !schema.sync_type) return false;
      // The schedule was just released in line with the catalog: triggered straight away (created if lost).
      await triggerSync(client(), source, schema).catch(async (err) => {
        if (!(err instanceof ScheduleNotFoundError)) throw err;
        await upsertSchedule(client(), taskQueue(), source, schema);
        await triggerSync(client(), source, schema);
      });
      return true;
    },

    /** Disables the source's schemas (nothing of it starts again) and lists what the deletion removes; null once deleted. */
    async planSourceDeletion(sourceId: string): Promise<{ schemaIds: string[]; tables: string[] } | null> {
      const source = await getSource(db, sourceId);
      if (!source) return null;
      await disableSourceSchemas(db, sourceId);
      const schemas = await listSchemas(db, sourceId);
      const tables = schemas.map((s) => warehouseTableName(source.prefix, s.name));
      return { schemaIds: schemas.map((s) => s.id), tables };
    },

    /**
     * Stops the source's streams (CDC mirror, webhook workflow) and undoes what Tributary set up at the
     * source (webhook endpoint, replication slot and publication). An unreachable source must not keep its
     * catalog entry alive: what fails there is a warning, and the deletion goes on.
     */
    async cleanupSource(sourceId: string, deleteData: boolean): Promise<{ warnings: string[]; dropped: string[] }> {
      return heartbeating(async () => {
        const source = await sourceOrGone(sourceId);
        const connector = connectorFor(source.source_type);
        if (!connector) throw ApplicationFailure.nonRetryable(`Unknown source type ${source.source_type}`, 'NotFound');
        const config = connector.configSchema.parse(unsealConfig(deps.catalog.secrets, source));
        // The mirror goes first: its stream holds the slot that cleanup drops.
        await terminateCdc(client(), source, 'source deleted').catch((err) => {
          if (!(err instanceof WorkflowNotFoundError)) throw err;
        });
        await terminateWebhookWorkflow(client(), source, 'source deleted');
        await testHold(deps, 'source streams stopped');
        const warnings: string[] = [];
        const dropped: string[] = [];
        const hook = await getWebhook(db, source.id);
        if (hook?.endpoint_id && connector.webhooks) {
          await connector.webhooks.unregister(config, hook.endpoint_id).catch((err: Error) => {
            warnings.push(`deleting the webhook endpoint ${hook.endpoint_id} at the source failed: ${err.message}`);
          });
        }
        if (deleteData && connector.webhooks) {
          const raw = webhookEventsTable(source.prefix);
          await dropTable(deps.warehouse, raw);
          forgetWebhookEventsTable(raw);
          dropped.push(raw);
        }
        if (connector.cleanup) {
          await connector.cleanup(config, { id: source.id, prefix: source.prefix }).catch((err: Error) => {
            warnings.push(`cleanup at the source failed: ${err.message}`);
          });
        }
        return { warnings, dropped };
      });
    },

    async deleteSourceRows(sourceId: string): Promise<void> {
      await deleteSource(db, sourceId);
      deps.log.info({ sourceId }, 'source deleted');
    },

    /**
     * sweepStaging's: drops each of `tables` and every table whose name starts with one — a job's staging prefix
     * (activities/context.ts stagingPrefix) covers all its attempts' tables and their diff scratch tables.
     */
    async dropTables(tables: string[]): Promise<void> {
      await heartbeating(async () => {
        for (const t of tables) await dropTablesStartingWith(deps.warehouse, t);
      });
    },
  };
}

export type AdminActivities = ReturnType<typeof createAdminActivities>;
