import { ActivityFailure, ApplicationFailure, patched, proxyActivities, proxyLocalActivities } from '@temporalio/workflow';
import type { SyncActivities } from '../activities';
import type { SyncResult, SyncSchemaInput } from '../common/types';

/** Runs started by versions that scheduled the bookkeeping as ordinary activities replay the same way. */
const remoteBookkeeping = proxyActivities<SyncActivities>({
  startToCloseTimeout: '1 minute',
  retry: { maximumAttempts: 10 },
});

/**
 * The bookkeeping steps (open the job, publish, record the outcome) are a few catalog or warehouse
 * statements each: as local activities they run inside the workflow task, without a round trip through
 * the server's task queue for each of them (an empty incremental run went from 3 activity dispatches to 1).
 * They are idempotent, so a local activity repeated after a crash is harmless.
 */
const localBookkeeping = proxyLocalActivities<SyncActivities>({
  startToCloseTimeout: '1 minute',
  retry: { maximumAttempts: 10 },
});

/**
 * The load activities. A worker that died is noticed after the heartbeat timeout and its activity retried
 * elsewhere; the activity heartbeats on a timer throughout, however long a source or engine call takes. The
 * timeout is the worker's setting (TRIBUTARY_HEARTBEAT_TIMEOUT_MS), handed over by beginJob: workflows read no environment.
 */
const extractWith = (heartbeatTimeoutMs?: number) =>
  proxyActivities<SyncActivities>({
    startToCloseTimeout: '24 hours',
    heartbeatTimeout: heartbeatTimeoutMs ?? '30 seconds',
    retry: { initialInterval: '2 seconds', maximumAttempts: 3 },
  });

/**
 * A published refresh's recording: its rows are live already, so it is retried longer than a load; each attempt
 * records the whole diff from the two tables, the replaced one kept until an attempt succeeds.
 */
const recordWith = (heartbeatTimeoutMs?: number) =>
  proxyActivities<SyncActivities>({
    startToCloseTimeout: '24 hours',
    heartbeatTimeout: heartbeatTimeoutMs ?? '30 seconds',
    retry: { initialInterval: '2 seconds', maximumInterval: '1 minute', maximumAttempts: 10 },
  });

function reason(err: unknown): string {
  if (err instanceof ActivityFailure && err.cause) return err.cause.message;
  return err instanceof Error ? err.message : String(err);
}

/**
 * One sync run of one table ("schema"): open a job; for a full refresh load the table into a fresh
 * warehouse table and swap it in, for incremental and append load the rows past the cursor (a webhook
 * table's run is its first load or its safety-net refresh, in place); record
 * the outcome and, only then, the cursor reached. Credentials never pass through here: activities read them by id.
 */
export async function syncSchema({ schemaId }: SyncSchemaInput): Promise<SyncResult> {
  const bookkeeping = patched('local-bookkeeping') ? localBookkeeping : remoteBookkeeping;
  const job = await bookkeeping.beginJob(schemaId);
  const extract = extractWith(job.heartbeatTimeoutMs);
  try {
    if (job.syncType === 'incremental' || job.syncType === 'append' || job.syncType === 'webhook') {
      const loaded = await extract.loadIncremental(schemaId, job.jobId, job.version);
      // The run's changes into the change log, before the run (and its cursor) counts as done.
      if (patched('change-log')) await extract.recordIncrementalChanges(schemaId, { changesFrom: loaded.changesFrom, refreshVersion: loaded.refreshVersion });
      await bookkeeping.completeJob(schemaId, job.jobId, loaded.rows, loaded.cursor, loaded.warnings);
      return { jobId: job.jobId, rows: loaded.rows };
    }
    const loaded = await extract.loadFullRefresh(schemaId, job.jobId, job.version);
    // Published first (readers see the new rows as soon as they are in), then the new live table against the one
    // it replaced, which the swap keeps under the staging name until its changes are recorded; the job completes
    // only then.
    if (patched('change-log')) {
      const published = await bookkeeping.publishRefresh(schemaId, job.jobId, loaded.stagingTable);
      const recorded = await recordWith(job.heartbeatTimeoutMs).recordRefreshChanges(schemaId, loaded.stagingTable, job.version, published.previous);
      await bookkeeping.completeJob(schemaId, job.jobId, loaded.rows, undefined, recorded.warnings);
      return { jobId: job.jobId, rows: loaded.rows };
    }
    await bookkeeping.publishTable(schemaId, loaded.stagingTable);
    await bookkeeping.completeJob(schemaId, job.jobId, loaded.rows);
    return { jobId: job.jobId, rows: loaded.rows };
  } catch (err) {
    await bookkeeping.failJob(schemaId, job.jobId, reason(err));
    throw ApplicationFailure.nonRetryable(`Sync failed: ${reason(err)}`);
  }
}
