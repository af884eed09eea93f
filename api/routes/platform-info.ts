import { Router } from 'express';
import { strictObject } from '../../common/strict-object';
import type { ApiDeps } from '../context';
import { fromZod } from '../errors';

/** No parameters: an unknown one is refused like everywhere else. */
export const platformInfoQuerySchema = strictObject({});

/** What a client needs to link out of the API: where a run opens in the Temporal UI. */
export function platformInfoRoutes(deps: ApiDeps): Router {
  const r = Router();
  r.get('/platform-info', (req, res) => {
    const q = platformInfoQuerySchema.safeParse(req.query);
    if (!q.success) throw fromZod(q.error);
    res.json({ temporal_ui_url: deps.temporalUi?.url ?? null, temporal_namespace: deps.temporalUi?.namespace ?? 'default' });
  });
  return r;
}
