import { WorkflowIdConflictPolicy, WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { SourceRow } from '../catalog/sources';
import type { CdcSourceInput } from '../common/types';
import { SA } from './search-attributes';

/**
 * `cdc-<source id>`: stable across prefix renames, so a signal never starts a second mirror on the
 * same slot. The search attributes (source id, type, sync type "cdc") and the summary find it by name.
 */
export const cdcWorkflowId = (source: Pick<SourceRow, 'id'>) => `cdc-${source.id}`;

type CdcSignal = 'tablesChanged' | 'pause' | 'resume' | 'resync';

function mirrorStart(taskQueue: string, source: SourceRow, paused: boolean) {
  // Workflows cannot read the environment: the operator's settings travel in the input (numbers, no secret).
  const setting = (name: string) => (Number(process.env[name]) > 0 ? Number(process.env[name]) : undefined);
  const input: CdcSourceInput = {
    sourceId: source.id,
    paused,
    loopsPerRun: setting('TRIBUTARY_CDC_LOOPS_PER_RUN'),
    streamAttempts: setting('TRIBUTARY_CDC_STREAM_ATTEMPTS'),
    retryAfterErrorSeconds: setting('TRIBUTARY_CDC_RETRY_AFTER_ERROR_SECONDS'),
    heartbeatTimeoutMs: setting('TRIBUTARY_STREAM_HEARTBEAT_TIMEOUT_MS'),
  };
  const args: [CdcSourceInput] = [Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined)) as CdcSourceInput];
  return {
    workflowId: cdcWorkflowId(source),
    taskQueue,
    args,
    workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
    staticSummary: `CDC mirror of ${source.source_type} source "${source.prefix}" (tables ${source.prefix}_*)`,
    typedSearchAttributes: [
      { key: SA.sourceId, value: source.id },
      { key: SA.sourceType, value: source.source_type },
      { key: SA.syncType, value: 'cdc' },
    ],
  };
}

/**
 * Hands a signal to the source's mirror workflow, starting it if it is not running (signal-with-start:
 * the catalog is the truth, the workflow reads it, so starting it and telling it are one step).
 */
export async function signalCdc(client: Client, taskQueue: string, source: SourceRow, signal: CdcSignal, opts: { paused?: boolean } = {}): Promise<void> {
  await client.workflow.signalWithStart('cdcSource', { ...mirrorStart(taskQueue, source, opts.paused ?? false), signal, signalArgs: [] });
}

/**
 * Starts the source's mirror if it is not running, and leaves a running one alone: a restart of the
 * platform changed nothing the mirror reads, and a signal would stop its stream for nothing.
 */
export async function ensureCdcMirror(client: Client, taskQueue: string, source: SourceRow, opts: { paused?: boolean } = {}): Promise<void> {
  await client.workflow.start('cdcSource', mirrorStart(taskQueue, source, opts.paused ?? false));
}

/** Stops the mirror at once (source deletion); its streaming activity learns at its next heartbeat. */
export async function terminateCdc(client: Client, source: SourceRow, reason: string): Promise<boolean> {
  try {
    await client.workflow.getHandle(cdcWorkflowId(source)).terminate(reason);
    return true;
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return false;
    throw err;
  }
}

export async function cdcWorkflowRunning(client: Client, source: SourceRow): Promise<boolean> {
  try {
    const d = await client.workflow.getHandle(cdcWorkflowId(source)).describe();
    return d.status.name === 'RUNNING';
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return false;
    throw err;
  }
}
