import { ScheduleNotFoundError, ScheduleOverlapPolicy, type Client } from '@temporalio/client';

export const ALERT_SCHEDULE_ID = 'tributary-watch-alerts';

/**
 * The schedule that runs the alert check (workflows/watch-alerts.ts) every `everyMs`
 * (TRIBUTARY_ALERT_CHECK_SECONDS, default 60; 0 turns the check off). Created once, brought in line on every start.
 */
export async function ensureAlertSchedule(client: Client, taskQueue: string, everyMs: number): Promise<void> {
  const handle = client.schedule.getHandle(ALERT_SCHEDULE_ID);
  if (everyMs <= 0) {
    await handle.delete().catch((err) => {
      if (!(err instanceof ScheduleNotFoundError)) throw err;
    });
    return;
  }
  const spec = { intervals: [{ every: everyMs }] };
  const action = { type: 'startWorkflow' as const, workflowType: 'watchAlerts', workflowId: 'watch-alerts', taskQueue, args: [], staticSummary: 'alert check: failed syncs, stale schemas, CDC lag and lost slots, disabled destinations' };
  try {
    await handle.update((prev) => ({ ...prev, spec, action }));
  } catch (err) {
    if (!(err instanceof ScheduleNotFoundError)) throw err;
    await client.schedule.create({ scheduleId: ALERT_SCHEDULE_ID, spec, action, policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 minute' } });
  }
}
