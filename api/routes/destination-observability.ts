import { Router } from 'express';
import { z } from 'zod';
import { getDestination } from '../../catalog/destinations';
import { strictObject } from '../../common/strict-object';
import {
  DESTINATION_METRICS,
  destinationLag,
  destinationLogs,
  destinationMetrics,
  LOG_LEVELS,
  METRIC_INTERVALS,
  type LogLevel,
  type MetricInterval,
} from '../../warehouse/destination-activity';
import type { ApiDeps } from '../context';
import { fromZod, notFound } from '../errors';
import { uuidSchema } from '../validation';

const intervals = Object.keys(METRIC_INTERVALS) as [MetricInterval, ...MetricInterval[]];

export const destinationMetricsQuerySchema = strictObject({
  interval: z.enum(intervals, { error: `interval must be one of ${intervals.join(', ')}` }).default('1h'),
});

export const destinationLogsQuerySchema = strictObject({
  /** One level or several, comma-separated (`warn,error`). */
  level: z
    .string()
    .transform((s) => s.split(',').map((l) => l.trim().toLowerCase()).filter(Boolean))
    .pipe(z.array(z.enum(LOG_LEVELS, { error: `each level must be one of ${LOG_LEVELS.join(', ')}` })).min(1, 'name at least one level'))
    .optional(),
  limit: z.coerce.number('limit must be a number').int().min(1).max(1000).default(100),
});

const counts = Object.fromEntries(DESTINATION_METRICS.map((m) => [m, z.number().int()])) as Record<(typeof DESTINATION_METRICS)[number], z.ZodNumber>;

export const destinationMetricsResult = z.object({
  destination_id: z.string(),
  interval: z.enum(intervals),
  health_state: z.enum(['healthy', 'degraded', 'disabled_temporarily', 'disabled']),
  disabled_until: z.string().nullable(),
  buckets: z.array(z.object({ time: z.string(), ...counts })),
  totals: z.object(counts),
  lag: z.object({
    changes: z.number().int().describe('changes after the checkpoint of the tables and operations the filters select'),
    oldest_landed_at: z.string().nullable(),
    seconds: z.number().nullable().describe('age of the oldest undelivered change'),
  }),
});

export const destinationLogsResult = z.object({
  results: z.array(
    z.object({
      time: z.string(),
      level: z.enum(LOG_LEVELS),
      message: z.string(),
      status: z.number().int().nullable(),
      duration_ms: z.number().int().nullable(),
      error: z.string().nullable(),
      response: z.string().nullable(),
      webhook_id: z.string(),
      change_ids: z.array(z.string()),
      attempt: z.number().int(),
    }),
  ),
});

async function destinationOr404(deps: ApiDeps, id: string) {
  const d = uuidSchema.safeParse(id).success ? await getDestination(deps.catalog.db, id) : undefined;
  if (!d) throw notFound(`Destination ${id}`);
  return d;
}

/**
 * What a destination's delivery did (warehouse/destination-activity.ts): counts per time bucket with its lag, and
 * its log. The same tables answer /api/query (`_tributary_destination_metrics`, `_tributary_destination_logs`).
 */
export function destinationObservabilityRoutes(deps: ApiDeps): Router {
  const r = Router();
  r.get('/destinations/:id/metrics', async (req, res) => {
    const q = destinationMetricsQuerySchema.safeParse(req.query);
    if (!q.success) throw fromZod(q.error);
    const d = await destinationOr404(deps, req.params.id);
    const f = d.config.filters ?? {};
    const [m, lag] = await Promise.all([
      destinationMetrics(deps.warehouse, d.id, q.data.interval),
      destinationLag(deps.warehouse, { after: { batch: BigInt(d.checkpoint_batch), seq: Number(d.checkpoint_seq) }, tables: f.tables, ops: f.operations }),
    ]);
    res.json({
      destination_id: d.id,
      interval: q.data.interval,
      health_state: d.health_state,
      disabled_until: d.disabled_until ? new Date(d.disabled_until).toISOString() : null,
      ...m,
      lag,
    });
  });
  r.get('/destinations/:id/logs', async (req, res) => {
    const q = destinationLogsQuerySchema.safeParse(req.query);
    if (!q.success) throw fromZod(q.error);
    const d = await destinationOr404(deps, req.params.id);
    res.json({ results: await destinationLogs(deps.warehouse, d.id, { levels: q.data.level as LogLevel[] | undefined, limit: q.data.limit }) });
  });
  return r;
}
