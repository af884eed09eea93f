import type { ActivityDeps } from './context';
import { createCdcActivities } from './cdc';
import { createSyncActivities } from './sync';
import { createWebhookActivities } from './webhooks';

export type { ActivityDeps } from './context';

export function createActivities(deps: ActivityDeps) {
  return { ...createSyncActivities(deps), ...createCdcActivities(deps), ...createWebhookActivities(deps) };
}

export type SyncActivities = ReturnType<typeof createActivities>;
