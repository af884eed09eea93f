import {
  ActivityCancellationType,
  ActivityFailure,
  CancellationScope,
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
  isCancellation,
  patched,
  proxyActivities,
  setHandler,
  uuid4,
  workflowInfo,
} from '@temporalio/workflow';
import type { CdcActivities } from '../activities/cdc';
import { streamsTaskQueue } from '../common/task-queues';
import type { CdcSourceInput } from '../common/types';

export const pauseSignal = defineSignal('pause');
export const resumeSignal = defineSignal('resume');
/** The source's set of CDC tables changed in the catalog (enabled, disabled, added). */
export const tablesChangedSignal = defineSignal('tablesChanged');
/** Start over: new slot, fresh snapshots. The way out of a lost slot. */
export const resyncSignal = defineSignal('resync');
export const cdcStateQuery = defineQuery<{ phase: string; paused: boolean; error: string | null }>('state');

const admin = proxyActivities<CdcActivities>({
  startToCloseTimeout: '2 minutes',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds', maximumAttempts: 20 },
});

const snapshots = proxyActivities<CdcActivities>({
  startToCloseTimeout: '24 hours',
  heartbeatTimeout: '30 seconds',
  retry: { initialInterval: '2 seconds', maximumAttempts: 5 },
});

/** After the streaming retries ran out on an error that may pass (a source down for long), the mirror tries again this often. */
const RETRY_AFTER_ERROR_SECONDS = 600;
/** Attempts of a stream (about a quarter of an hour with the backoff below) before the mirror shows Error. */
const STREAM_ATTEMPTS = 20;

function reason(err: unknown): string {
  if (err instanceof ActivityFailure && err.cause) return err.cause.message;
  return err instanceof Error ? err.message : String(err);
}

/** Loops before continuing as new: each is a handful of events, far below Temporal's history limits. */
const LOOPS_PER_RUN = 40;

/**
 * One long-lived mirror per Postgres source (PeerDB's shape): make the slot and publication match the
 * catalog, snapshot the tables that need it, then stream until a signal asks for something else or the
 * streaming activity hands back. Credentials never pass through here: activities read them by id.
 */
export async function cdcSource(input: CdcSourceInput): Promise<void> {
  const { sourceId, loopsPerRun = LOOPS_PER_RUN, streamAttempts = STREAM_ATTEMPTS, retryAfterErrorSeconds = RETRY_AFTER_ERROR_SECONDS } = input;
  let paused = input.paused ?? false;
  let tablesChanged = false;
  let resync = input.resync ?? false;
  let phase = 'starting';
  let error: string | null = null;
  let stream: CancellationScope | undefined;

  const streaming = proxyActivities<CdcActivities>({
    // Its own queue and slots: a stream holds one for long, and must not starve the batch work.
    taskQueue: streamsTaskQueue(workflowInfo().taskQueue),
    startToCloseTimeout: '2 hours',
    // A dead worker is noticed this quickly and the stream resumes elsewhere from the checkpoint.
    heartbeatTimeout: input.heartbeatTimeoutMs ?? '20 seconds',
    // Wait for the activity to write and checkpoint what it has before the workflow moves on.
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    // The source can be unreachable for a while: keep trying for about a quarter of an hour, except for what no
    // retry can fix; then the mirror shows Error with the reason (and tries again later, see below).
    retry: {
      initialInterval: '1 second',
      maximumInterval: '1 minute',
      maximumAttempts: streamAttempts,
      nonRetryableErrorTypes: ['SlotLost', 'IncompatibleSchemaChange', 'NotFound', 'WarehouseRejected'],
    },
  });

  setHandler(pauseSignal, () => {
    paused = true;
    stream?.cancel();
  });
  setHandler(resumeSignal, () => {
    paused = false;
  });
  setHandler(tablesChangedSignal, () => {
    tablesChanged = true;
    stream?.cancel();
  });
  setHandler(resyncSignal, () => {
    resync = true;
    stream?.cancel();
  });
  setHandler(cdcStateQuery, () => ({ phase, paused, error }));

  for (let loop = 0; loop < loopsPerRun && !workflowInfo().continueAsNewSuggested; loop++) {
    try {
      if (resync) {
        resync = false;
        phase = 'resyncing';
        await admin.resetCdc(sourceId);
      }
      tablesChanged = false;
      phase = 'preparing';
      const plan = await admin.prepareCdc(sourceId);
      if (!plan.tables.length) {
        // No CDC tables left: release the slot so it holds no WAL, and end.
        await admin.teardownCdc(sourceId);
        return;
      }
      for (const t of plan.snapshot) {
        phase = `snapshot ${t.name}`;
        await admin.setCdcState(sourceId, 'Snapshotting', null);
        await snapshots.snapshotCdcTable(sourceId, t.schemaId, uuid4());
      }
      error = null;
      if (paused) {
        phase = 'paused';
        await admin.setCdcState(sourceId, 'Paused', null);
        await condition(() => !paused || tablesChanged || resync);
        continue;
      }
      if (tablesChanged || resync) continue; // signalled during the snapshots: prepare again first
      phase = 'streaming';
      stream = new CancellationScope();
      await stream.run(() => streaming.streamCdc(sourceId));
    } catch (err) {
      if (isCancellation(err)) {
        if (CancellationScope.current().consideredCancelled) throw err; // the workflow itself was cancelled
        continue; // the stream was stopped by a signal
      }
      // Broken beyond retrying (lost slot, incompatible type change): say so and wait for the user.
      error = reason(err);
      phase = 'error';
      await admin.setCdcState(sourceId, 'Error', error);
      const mayPass = err instanceof ActivityFailure && err.retryState === 'MAXIMUM_ATTEMPTS_REACHED';
      // Retries used up on an error that may pass: the mirror stays in Error, and tries again now and then on its own.
      if (mayPass && patched('cdc-retry-after-error')) await condition(() => resync || tablesChanged, retryAfterErrorSeconds * 1000);
      else await condition(() => resync || tablesChanged);
    } finally {
      stream = undefined;
    }
  }
  // Signals are flags: the ones not acted on yet travel with the new run (a table change is always re-read).
  await continueAsNew<typeof cdcSource>({ ...input, paused, resync });
}

