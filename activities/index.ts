import type { ActivityDeps } from './context';
import { createAdminActivities } from './admin';
import { createAlertActivities } from './alerts';
import { createCdcActivities } from './cdc';
import { createDeliveryActivities } from './deliver';
import { createSyncActivities } from './sync';
import { createWebhookActivities } from './webhooks';

export type { ActivityDeps } from './context';

export function createActivities(deps: ActivityDeps) {
  return { ...createSyncActivities(deps), ...createCdcActivities(deps), ...createWebhookActivities(deps), ...createAdminActivities(deps), ...createDeliveryActivities(deps), ...createAlertActivities(deps) };
}

export type SyncActivities = ReturnType<typeof createActivities>;
