import { Client, Connection } from '@temporalio/client';

/** A Temporal client for a test, closed after `fn`. */
export async function withTemporal<T>(address: string, fn: (c: Client) => Promise<T>): Promise<T> {
  const connection = await Connection.connect({ address });
  try {
    return await fn(new Client({ connection }));
  } finally {
    await connection.close();
  }
}

/** A workflow's whole history with every payload decoded, so a credential in any of them would show in clear. */
export async function historyText(client: Client, workflowId: string, runId?: string): Promise<string> {
  const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
  return JSON.stringify(history, (k, v) =>
    v instanceof Uint8Array ? Buffer.from(v).toString('utf8') : k === 'data' && typeof v === 'string' ? Buffer.from(v, 'base64').toString('utf8') : v,
  );
}

/** A workflow's search attributes, by name. */
export async function searchAttributes(client: Client, workflowId: string): Promise<Record<string, unknown>> {
  const d = await client.workflow.getHandle(workflowId).describe();
  const out: Record<string, unknown> = {};
  for (const pair of d.typedSearchAttributes.getAll()) out[pair.key.name] = pair.value;
  return out;
}
