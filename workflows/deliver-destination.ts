import {
  ActivityCancellationType,
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  condition,
  continueAsNew,
  defineSignal,
  isCancellation,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { DeliveryActivities } from '../activities/deliver';
import { streamsTaskQueue } from '../common/task-queues';
import type { DeliverDestinationInput } from '../destinations/types';

/** The destination was edited, enabled, disabled or re-enabled in the catalog: read it again. */
export const destinationChangedSignal = defineSignal('destinationChanged');

const control = proxyActivities<DeliveryActivities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds' },
});

/** Loops before continuing as new (each is a handful of events); TRIBUTARY_DESTINATION_LOOPS_PER_RUN sets it. */
const LOOPS_PER_RUN = 50;

/**
 * One long-lived delivery per destination (temporal/destination-workflows.ts starts it). The catalog is the
 * truth and activities read it by id: a destination that may send runs the delivery activity, which reads the
 * change log from the checkpoint and sends until it is told to stop, its time is up, or the destination's health
 * disables it; one that is disabled (by the user, or by its health until the cool-down ends) waits here.
 * `destinationChanged` makes it read the catalog again, stopping a running delivery first (what it has sent is
 * checkpointed; anything in flight is sent again with the same webhook-id).
 */
export async function deliverDestination(input: DeliverDestinationInput): Promise<void> {
  const { destinationId, loopsPerRun = LOOPS_PER_RUN } = input;
  let changed = false;
  let running: CancellationScope | undefined;

  const streaming = proxyActivities<DeliveryActivities>({
    // Like a CDC stream: long-lived, mostly waiting on the network, so it runs on the streams queue's slots.
    taskQueue: streamsTaskQueue(workflowInfo().taskQueue),
    startToCloseTimeout: '2 hours',
    // A worker that died is noticed this quickly; the next attempt resumes from the catalog's checkpoint.
    heartbeatTimeout: input.heartbeatTimeoutMs ?? '20 seconds',
    // Let the activity save its checkpoint and logs before the workflow reads the catalog again.
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    // Nothing may be lost: an engine or catalog that is down is waited for, however long.
    retry: { initialInterval: '1 second', maximumInterval: '1 minute', nonRetryableErrorTypes: ['NotFound'] },
  });

  setHandler(destinationChangedSignal, () => {
    changed = true;
    running?.cancel();
  });

  for (let loop = 0; loop < loopsPerRun && !workflowInfo().continueAsNewSuggested; loop++) {
    changed = false;
    const plan = await control.planDelivery(destinationId);
    if (plan.action === 'gone') return;
    if (changed) continue; // signalled while it was being read: read it again
    if (plan.action === 'wait') {
      // Disabled: until the cool-down ends (waitMs), or for as long as the user leaves it disabled.
      if (plan.waitMs === null) await condition(() => changed);
      else await condition(() => changed, Math.max(1, plan.waitMs));
      continue;
    }
    try {
      running = new CancellationScope();
      await running.run(() => streaming.deliverChanges(destinationId));
    } catch (err) {
      if (isCancellation(err)) {
        if (CancellationScope.current().consideredCancelled) throw err; // the workflow itself was cancelled
        continue; // destinationChanged stopped it
      }
      if (err instanceof ActivityFailure && err.cause instanceof ApplicationFailure && err.cause.type === 'NotFound') return;
      throw err;
    } finally {
      running = undefined;
    }
  }
  await continueAsNew<typeof deliverDestination>(input);
}
