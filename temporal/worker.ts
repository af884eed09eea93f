import { NativeConnection, Worker, type State } from '@temporalio/worker';
import { createActivities, type ActivityDeps } from '../activities';
import { streamsTaskQueue } from '../common/task-queues';
import { bundleWorkflowsApart } from './workflow-bundle';

/** The workers of one process, run and shut down as one: both queues are polled wherever a worker runs. */
export interface Workers {
  run(): Promise<void>;
  shutdown(): void;
  getState(): State;
}

/** The worker: the workflows of workflows/ and the activities built from the stores it was given. */
export async function createWorker(opts: {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  deps: ActivityDeps;
  /** At most this long between heartbeats sent to the server (the progress the UI shows, the cursor a retry resumes from). */
  heartbeatThrottleMs: number;
  /** How many CDC streams this process runs at once (TRIBUTARY_STREAM_SLOTS). */
  streamSlots: number;
}): Promise<Workers> {
  const activities = createActivities(opts.deps);
  // Heartbeats carry the progress the Temporal UI shows and the cursor a retry resumes from: send
  // them at least every second rather than the SDK's default of most of the heartbeat timeout.
  // A stop is bounded (platform/main.ts): activities get a few seconds to see their cancellation, then the
  // worker gives up on them, as a crash would (Temporal retries them on the next start).
  const common = {
    connection: opts.connection,
    namespace: opts.namespace,
    activities,
    maxHeartbeatThrottleInterval: opts.heartbeatThrottleMs,
    shutdownGraceTime: '3s',
    shutdownForceTime: '8s',
  } as const;
  const main = await Worker.create({
    ...common,
    taskQueue: opts.taskQueue,
    // Bundled apart: webpack never loads into the long-running process.
    workflowBundle: await bundleWorkflowsApart(),
    // chDB is one engine per process: a few concurrent loads keep both cores busy without thrashing it.
    maxConcurrentActivityTaskExecutions: 4,
  });
  // Activities only: a stream's work in the engine is small flushes, so many of them fit beside the loads.
  const streams = await Worker.create({ ...common, taskQueue: streamsTaskQueue(opts.taskQueue), maxConcurrentActivityTaskExecutions: opts.streamSlots });
  const both = [main, streams];
  return {
    async run() {
      // One stopping (a fatal error) stops the other, so the process never half-polls.
      const ended = await Promise.allSettled(both.map((w) => w.run().finally(() => both.forEach((o) => o.getState() === 'RUNNING' && o.shutdown()))));
      const failed = ended.find((r) => r.status === 'rejected');
      if (failed) throw failed.reason;
    },
    shutdown() {
      for (const w of both) if (w.getState() === 'RUNNING') w.shutdown();
    },
    getState: () => main.getState(),
  };
}
