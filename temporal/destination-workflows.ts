import { WorkflowIdConflictPolicy, WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { DestinationRow } from '../catalog/destinations';
import type { DeliverDestinationInput } from '../destinations/types';

/**
 * `destination-<id>`: one long-lived delivery workflow per destination (workflows/deliver-destination.ts).
 * The catalog is the truth; the workflow re-reads it when told `destinationChanged`.
 */
export const destinationWorkflowId = (id: string) => `destination-${id}`;

function deliveryStart(taskQueue: string, d: Pick<DestinationRow, 'id' | 'name' | 'type'>) {
  // Workflows cannot read the environment: the operator's settings travel in the input (numbers, no secret).
  const loops = Number(process.env.TRIBUTARY_DESTINATION_LOOPS_PER_RUN);
  const heartbeat = Number(process.env.TRIBUTARY_STREAM_HEARTBEAT_TIMEOUT_MS);
  const input: DeliverDestinationInput = {
    destinationId: d.id,
    ...(loops > 0 ? { loopsPerRun: loops } : {}),
    ...(heartbeat > 0 ? { heartbeatTimeoutMs: heartbeat } : {}),
  };
  return {
    workflowId: destinationWorkflowId(d.id),
    taskQueue,
    args: [input] as [DeliverDestinationInput],
    workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
    staticSummary: `Delivery of changes to ${d.type} destination "${d.name}"`,
  };
}

/** Starts the destination's delivery if it is not running (platform start, create). */
export async function ensureDelivery(client: Client, taskQueue: string, d: Pick<DestinationRow, 'id' | 'name' | 'type'>): Promise<void> {
  await client.workflow.start('deliverDestination', deliveryStart(taskQueue, d));
}

/** The destination was edited, enabled or disabled: the delivery re-reads it (started if it was not running). */
export async function signalDestinationChanged(client: Client, taskQueue: string, d: Pick<DestinationRow, 'id' | 'name' | 'type'>): Promise<void> {
  await client.workflow.signalWithStart('deliverDestination', { ...deliveryStart(taskQueue, d), signal: 'destinationChanged', signalArgs: [] });
}

/** Stops the delivery at once (the destination is deleted). False when none was running. */
export async function terminateDelivery(client: Client, id: string, reason: string): Promise<boolean> {
  try {
    await client.workflow.getHandle(destinationWorkflowId(id)).terminate(reason);
    return true;
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return false;
    throw err;
  }
}
