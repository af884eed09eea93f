import { Router } from 'express';
import type { ApiDeps } from '../context';

type PartStatus = { mode: 'embedded' | 'remote'; status: 'ok' | 'error'; error?: string };

async function probe(mode: PartStatus['mode'], fn: () => Promise<unknown>): Promise<PartStatus> {
  try {
    await fn();
    return { mode, status: 'ok' };
  } catch (err) {
    return { mode, status: 'error', error: (err as Error).message };
  }
}

/** Unauthenticated liveness: each part with its mode and whether it answers. */
export function healthRoutes(deps: ApiDeps): Router {
  const r = Router();
  r.get('/health', async (_req, res) => {
    const [temporal, warehouse, catalog] = await Promise.all([
      probe(deps.modes.temporal, () => deps.temporal.workflowService.getSystemInfo({})),
      probe(deps.modes.warehouse, async () => {
        const p = await deps.warehouse.ping();
        if (!p.ok) throw new Error(p.error ?? 'ping failed');
      }),
      probe(deps.modes.catalog, () => deps.catalog.db.query('SELECT 1')),
    ]);
    const ok = [temporal, warehouse, catalog].every((p) => p.status === 'ok');
    res.status(ok ? 200 : 503).json({ status: ok ? 'ok' : 'degraded', temporal, warehouse, catalog });
  });
  return r;
}
