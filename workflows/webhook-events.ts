import { condition, continueAsNew, defineSignal, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { WebhookActivities } from '../activities/webhooks';
import type { WebhookEventsInput } from '../common/types';

/** Event ids the intake stored in `{prefix}_webhook_events` and answered 200 for. */
export const eventsReceivedSignal = defineSignal<[string[]]>('eventsReceived');

const apply = proxyActivities<WebhookActivities>({
  // A batch is one read and a few inserts: a worker that died mid-batch is noticed this soon and the batch redone.
  startToCloseTimeout: '30 seconds',
  // An accepted event is never dropped: keep retrying (the warehouse may be down for a while).
  retry: { initialInterval: '1 second', maximumInterval: '1 minute' },
});

/** Batches applied before continuing as new (each is ~4 history events, plus one per signal). */
const BATCHES_PER_RUN = 200;
const EVENTS_PER_BATCH = 1000;

/**
 * One long-lived workflow per source with webhook tables: the intake signals each accepted event's id
 * (signal-with-start), and this applies them in arrival batches. The events themselves stay in the
 * warehouse's raw history, so the workflow's history holds ids only.
 */
export async function webhookEvents({ sourceId, pending = [] }: WebhookEventsInput): Promise<void> {
  const queue = [...pending];
  let received = 0;
  setHandler(eventsReceivedSignal, (ids) => {
    queue.push(...ids);
    received += ids.length;
  });
  for (let batches = 0; batches < BATCHES_PER_RUN && received < 20 * EVENTS_PER_BATCH && !workflowInfo().continueAsNewSuggested; batches++) {
    await condition(() => queue.length > 0);
    const batch = queue.slice(0, EVENTS_PER_BATCH);
    await apply.applyWebhookEvents(sourceId, batch);
    // Only what was applied leaves the queue: ids signalled meanwhile wait for the next batch.
    queue.splice(0, batch.length);
  }
  // Ids not applied yet travel with the new run.
  await continueAsNew<typeof webhookEvents>({ sourceId, pending: queue });
}
