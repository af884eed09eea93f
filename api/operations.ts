import {
  ActivityFailure,
  ApplicationFailure,
  WorkflowExecutionAlreadyStartedError,
  WorkflowFailedError,
  WorkflowIdConflictPolicy,
  type WorkflowHandle,
} from '@temporalio/client';
import type { SourceRow } from '../catalog/sources';
import { SA } from '../temporal/search-attributes';
import type { changePrefix, deleteSource, resetSchema } from '../workflows/source-admin';
import type { ApiDeps } from './context';
import { ApiError, conflict } from './errors';

/**
 * Admin operations (workflows/source-admin.ts) seen from the API: started under an id that allows one at a
 * time per source or schema, then waited for — the change is visible when the call returns — up to a bound
 * (TRIBUTARY_OPERATION_WAIT_MS, default 30 s). Past it the caller gets 202 with the operation's workflow
 * id, and the operation carries on (through restarts) to the state it names.
 */

type AdminWorkflow = typeof changePrefix | typeof deleteSource | typeof resetSchema;

export interface PendingOperation {
  workflow_id: string;
  status: 'running';
  /** What the operation leads to once done. */
  leads_to: Record<string, unknown>;
}

export type Outcome<T> = { done: true; result: T } | { done: false; pending: PendingOperation };

export const OPERATION_WAIT_MS = () => Number(process.env.TRIBUTARY_OPERATION_WAIT_MS) || 30_000;

export async function startOperation<W extends AdminWorkflow>(
  deps: ApiDeps,
  type: 'changePrefix' | 'deleteSource' | 'resetSchema',
  workflowId: string,
  args: Parameters<W>,
  opts: { source: SourceRow; summary: string; what: string },
): Promise<WorkflowHandle<W>> {
  try {
    return await deps.temporal.workflow.start<W>(type, {
      workflowId,
      taskQueue: deps.taskQueue,
      args,
      workflowIdConflictPolicy: WorkflowIdConflictPolicy.FAIL,
      staticSummary: opts.summary,
      typedSearchAttributes: [
        { key: SA.sourceId, value: opts.source.id },
        { key: SA.sourceType, value: opts.source.source_type },
      ],
    });
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) {
      throw conflict(`another change of ${opts.what} is in progress (workflow ${workflowId}): try again once it is done`);
    }
    throw err;
  }
}

/** The operation's result if it ends within the bound; otherwise what it leads to, for a 202. */
export async function awaitOperation<T>(handle: WorkflowHandle, leadsTo: Record<string, unknown>, boundMs = OPERATION_WAIT_MS()): Promise<Outcome<T>> {
  const result = handle.result() as Promise<T>;
  result.catch(() => undefined); // still pending after the bound: its end is not this request's business
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<typeof PENDING>((resolve) => (timer = setTimeout(() => resolve(PENDING), boundMs)));
  try {
    const r = await Promise.race([result, bound]);
    if (r === PENDING) return { done: false, pending: { workflow_id: handle.workflowId, status: 'running', leads_to: leadsTo } };
    return { done: true, result: r as T };
  } catch (err) {
    throw operationError(err, handle.workflowId);
  } finally {
    clearTimeout(timer);
  }
}
const PENDING = Symbol('pending');

/** A failed operation as the API says it: a conflict found on the way is a 409, anything else names the workflow. */
function operationError(err: unknown, workflowId: string): unknown {
  if (!(err instanceof WorkflowFailedError)) return err;
  let cause: unknown = err.cause;
  while (cause instanceof ActivityFailure && cause.cause) cause = cause.cause;
  if (cause instanceof ApplicationFailure && cause.type === 'Conflict') return conflict(cause.message);
  const message = cause instanceof Error ? cause.message : err.message;
  return new ApiError(500, 'operation_failed', `the operation failed (workflow ${workflowId}): ${message}`);
}
