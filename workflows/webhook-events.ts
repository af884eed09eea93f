import { condition, continueAsNew, defineSignal, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { WebhookActivities } from '../activities/webhooks';
import type { WebhookEventsInput } from '../common/types';

/** Event ids the intake stored in `{prefix}_webhook_events` and answered 200 for. */
export const eventsReceivedSignal = defineSignal<[string[]]>('eventsReceived');

const apply = proxyActivities<WebhookActivities>({
  startToCloseTimeout: '10 minutes',
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
    await apply.applyWebhookEvents(sourceId, queue.slice(0, EVENTS_PER_BATCH));
    queue.splice(0, EVENTS_PER_BATCH);
  }
  // Ids not applied yet travel with the new run.
  await continueAsNew<typeof webhookEvents>({ sourceId, pending: queue });
}
