import { Router } from 'express';
import { z } from 'zod';
import { ALERT_KINDS, listAlerts, type AlertRow } from '../../catalog/alerts';
import { strictObject } from '../../common/strict-object';
import type { ApiDeps } from '../context';
import { fromZod } from '../errors';

export const alertsQuerySchema = strictObject({
  state: z.enum(['open', 'cleared']).optional(),
  kind: z.enum(ALERT_KINDS).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

const timestamp = z.string().describe('ISO 8601 timestamp, UTC');

export const alertResponse = z
  .object({
    id: z.uuid(),
    kind: z.enum(ALERT_KINDS),
    severity: z.enum(['warning', 'critical']),
    subject: z
      .object({
        source_id: z.uuid().optional(),
        source_name: z.string().optional().describe("the source's prefix"),
        schema_id: z.uuid().optional(),
        schema_name: z.string().optional(),
        destination_id: z.uuid().optional(),
        destination_name: z.string().optional(),
      })
      .describe('what the incident is about'),
    message: z.string(),
    raised_at: timestamp,
    cleared_at: timestamp.nullable(),
    state: z.enum(['open', 'cleared']),
  })
  .meta({ id: 'Alert' });

export const alertsResult = z.object({ results: z.array(alertResponse) });

export function presentAlert(a: AlertRow): z.infer<typeof alertResponse> {
  return {
    id: a.id,
    kind: a.kind,
    severity: a.severity,
    subject: a.subject,
    message: a.message,
    raised_at: new Date(a.raised_at).toISOString(),
    cleared_at: a.cleared_at ? new Date(a.cleared_at).toISOString() : null,
    state: a.cleared_at ? 'cleared' : 'open',
  };
}

export function alertRoutes(deps: ApiDeps): Router {
  const r = Router();
  r.get('/alerts', async (req, res) => {
    const q = alertsQuerySchema.safeParse(req.query);
    if (!q.success) throw fromZod(q.error);
    const alerts = await listAlerts(deps.catalog.db, q.data);
    res.json({ results: alerts.map(presentAlert) });
  });
  return r;
}
