import { Router, type Request } from 'express';
import type { RunningQuery } from '../../warehouse/client';
import { requireToken } from '../auth';
import type { ApiDeps } from '../context';

type Running = Omit<RunningQuery, 'query'> & { query?: string };
type PartStatus = { mode: 'embedded' | 'remote'; status: 'ok' | 'degraded' | 'error'; error?: string; running?: Running[] };

/** A part that does not answer a trivial request within this long is not healthy. */
const PROBE_TIMEOUT_MS = 3_000;

async function probe(mode: PartStatus['mode'], fn: () => Promise<unknown>): Promise<PartStatus> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${PROBE_TIMEOUT_MS} ms`)), PROBE_TIMEOUT_MS)));
  try {
    await Promise.race([fn(), late]);
    return { mode, status: 'ok' };
  } catch (err) {
    return { mode, status: 'error', error: (err as Error).message };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The warehouse answers `SELECT 1` in time on the platform's session and on users' (where a heavy query
 * would make every other user's wait): when not, it is degraded, and the answer says what it is busy with.
 */
async function probeWarehouse(deps: ApiDeps, showQueries: boolean): Promise<PartStatus> {
  const mode = deps.modes.warehouse;
  const p = await deps.warehouse.ping({ timeoutMs: PROBE_TIMEOUT_MS });
  if (p.ok) return { mode, status: 'ok' };
  const running = await Promise.race([
    deps.warehouse.running().catch(() => undefined),
    new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), PROBE_TIMEOUT_MS).unref()),
  ]);
  const shown = running?.map(({ query, ...rest }) => (showQueries ? { ...rest, query } : rest));
  return { mode, status: 'degraded', error: p.error ?? 'ping failed', ...(shown ? { running: shown } : {}) };
}

/**
 * Unauthenticated liveness: each part with its mode and whether it answers in time. What the warehouse runs
 * comes with the queries' text only for a caller with the API token (a query's literals are users' data).
 */
export function healthRoutes(deps: ApiDeps): Router {
  const r = Router();
  const checkToken = requireToken(deps.apiToken);
  const hasToken = (req: Request) => new Promise<boolean>((resolve) => checkToken(req, {} as never, (err?: unknown) => resolve(!err)));
  r.get('/health', async (req, res) => {
    const [temporal, warehouse, catalog] = await Promise.all([
      probe(deps.modes.temporal, () => deps.temporal.workflowService.getSystemInfo({})),
      probeWarehouse(deps, await hasToken(req)),
      probe(deps.modes.catalog, () => deps.catalog.db.query('SELECT 1')),
    ]);
    const ok = [temporal, warehouse, catalog].every((p) => p.status === 'ok');
    res.status(ok ? 200 : 503).json({ status: ok ? 'ok' : 'degraded', temporal, warehouse, catalog });
  });
  return r;
}
