import { WorkflowIdConflictPolicy, WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { SourceRow } from '../catalog/sources';
import type { WebhookEventsInput } from '../common/types';
import { SA } from './search-attributes';

/** `webhooks-<source id>`: one per source, stable across prefix renames. */
export const webhookWorkflowId = (source: Pick<SourceRow, 'id'>) => `webhooks-${source.id}`;

/**
 * Hands accepted event ids to the source's webhook workflow, starting it if needed. Once this returns,
 * Temporal has the signal durably: only then does the intake answer 200.
 */
export async function signalWebhookEvents(client: Client, taskQueue: string, source: SourceRow, ids: string[]): Promise<void> {
  const args: [WebhookEventsInput] = [{ sourceId: source.id }];
  await client.workflow.signalWithStart('webhookEvents', {
    workflowId: webhookWorkflowId(source),
    taskQueue,
    args,
    signal: 'eventsReceived',
    signalArgs: [ids],
    workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
    staticSummary: `Webhook events of ${source.source_type} source "${source.prefix}" (raw history: ${source.prefix}_webhook_events)`,
    typedSearchAttributes: [
      { key: SA.sourceId, value: source.id },
      { key: SA.sourceType, value: source.source_type },
      { key: SA.syncType, value: 'webhook' },
    ],
  });
}

export async function terminateWebhookWorkflow(client: Client, source: SourceRow, reason: string): Promise<void> {
  try {
    await client.workflow.getHandle(webhookWorkflowId(source)).terminate(reason);
  } catch (err) {
    if (!(err instanceof WorkflowNotFoundError)) throw err;
  }
}
