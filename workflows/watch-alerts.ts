import { proxyActivities } from '@temporalio/workflow';
import type { SyncActivities } from '../activities';

const alerts = proxyActivities<Pick<SyncActivities, 'checkAlerts'>>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '2 seconds', maximumInterval: '20 seconds', maximumAttempts: 3 },
});

/**
 * One alert check (activities/alerts.ts), started every minute by the `tributary-watch-alerts` schedule
 * (temporal/alert-schedule.ts). A run that fails is simply followed by the next one: incidents are kept in the
 * catalog, so a missed check raises or clears nothing twice.
 */
export async function watchAlerts(): Promise<{ raised: number; cleared: number; open: number }> {
  return alerts.checkAlerts();
}
