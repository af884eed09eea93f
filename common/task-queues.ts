/**
 * The task queue of the long-lived activities (a CDC mirror's stream): they hold a slot for up to
 * TRIBUTARY_CDC_STREAM_MS at a time, mostly waiting on the socket, so they get their own queue and
 * slots (TRIBUTARY_STREAM_SLOTS); the main queue's few slots stay free for batch syncs, snapshots and
 * webhook batches. Shared by the worker and the workflow code, so it imports nothing.
 */
export const streamsTaskQueue = (taskQueue: string) => `${taskQueue}-streams`;
