import { NativeConnection, Worker } from '@temporalio/worker';
import { createActivities, type ActivityDeps } from '../activities';
import { bundleWorkflowsApart } from './workflow-bundle';

/** The worker: the workflows of workflows/ and the activities built from the stores it was given. */
export async function createWorker(opts: {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  deps: ActivityDeps;
  /** At most this long between heartbeats sent to the server (the progress the UI shows, the cursor a retry resumes from). */
  heartbeatThrottleMs: number;
}): Promise<Worker> {
  return Worker.create({
    connection: opts.connection,
    namespace: opts.namespace,
    taskQueue: opts.taskQueue,
    // Bundled apart: webpack never loads into the long-running process.
    workflowBundle: await bundleWorkflowsApart(),
    activities: createActivities(opts.deps),
    // chDB is one engine per process: a few concurrent loads keep both cores busy without thrashing it.
    maxConcurrentActivityTaskExecutions: 4,
    // Heartbeats carry the progress the Temporal UI shows and the cursor a retry resumes from: send
    // them at least every second rather than the SDK's default of most of the heartbeat timeout.
    maxHeartbeatThrottleInterval: opts.heartbeatThrottleMs,
    // A stop is bounded (platform/main.ts): activities get a few seconds to see their cancellation, then the
    // worker gives up on them, as a crash would (Temporal retries them on the next start).
    shutdownGraceTime: '3s',
    shutdownForceTime: '8s',
  });
}
