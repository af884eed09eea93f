import type { ActivityDeps } from './context';
import { createSyncActivities } from './sync';

export type { ActivityDeps } from './context';

export function createActivities(deps: ActivityDeps) {
  return { ...createSyncActivities(deps) };
}

export type SyncActivities = ReturnType<typeof createActivities>;
