import { Router } from 'express';
import { listJobs } from '../../catalog/jobs';
import type { ApiDeps } from '../context';
import { fromZod } from '../errors';
import { presentJob } from '../present';
import { jobsQuerySchema } from '../validation';

export function jobRoutes(deps: ApiDeps): Router {
  const r = Router();
  r.get('/jobs', async (req, res) => {
    const q = jobsQuerySchema.safeParse(req.query);
    if (!q.success) throw fromZod(q.error);
    const jobs = await listJobs(deps.catalog.db, {
      schemaId: q.data.schema_id,
      sourceId: q.data.source_id,
      status: q.data.status,
      limit: q.data.limit,
    });
    res.json({ results: jobs.map(presentJob) });
  });
  return r;
}
