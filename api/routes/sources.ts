import { cdcLagHistory, getCdcMirror, LAG_HISTORY_HOURS, listCdcMirrors } from '../../catalog/cdc';
import { pauseCdc, resumeCdc, resyncCdc, withCdc } from '../cdc-control';
import { Router } from 'express';
import { z } from 'zod';
import { listSchemas } from '../../catalog/schemas';
import type { CatalogDb } from '../../catalog/db';
import { getSource, listSources, sourceSummaries } from '../../catalog/sources';
import { connectors } from '../../connectors/registry';
import type { ApiDeps } from '../context';
import { fromZod, notFound } from '../errors';
import { strictObject } from '../../common/strict-object';
import { presentSchema, presentSource } from '../present';
import { changeSource, refreshSchemas, removeSource } from '../source-management';
import { againstSource, createSource, parseConnectionConfig, resolveConnector } from '../source-setup';
import { refreshRunState, startSyncs } from '../sync-control';
import { connectionCheckSchema, createSourceSchema, schemaEntrySchema, deleteSourceQuerySchema, patchSourceSchema, syncAllSchema, uuidSchema } from '../validation';

export const isUuid = (id: string) => uuidSchema.safeParse(id).success;

export const cdcLagHistoryQuerySchema = strictObject({
  hours: z.coerce
    .number('hours must be a number')
    .int('hours must be a whole number')
    .min(1, 'hours must be at least 1')
    .max(LAG_HISTORY_HOURS, `hours must be at most ${LAG_HISTORY_HOURS} (measurements are kept that long)`)
    .default(LAG_HISTORY_HOURS),
});

/** check-cdc-prerequisites: the connection fields, plus optionally the tables chosen for CDC. */
export const cdcCheckSchema = connectionCheckSchema.extend({
  tables: z.array(z.string().min(1, 'a table name is required'), 'tables must be a list of table names').optional(),
  schemas: z
    .array(
      // The entries the create body takes (the wizard sends the same ones), with only what this check reads required.
      strictObject({ ...schemaEntrySchema.partial().shape, name: z.string().min(1, 'name is required'), sync_type: z.string().nullish() }),
      'schemas must be a list of table entries',
    )
    .optional(),
});

/** The source a route's `:id` names, or a 404. */
export async function sourceOr404(db: CatalogDb, id: string) {
  const source = isUuid(id) ? await getSource(db, id) : undefined;
  if (!source) throw notFound(`Source ${id}`);
  return source;
}

export function sourceRoutes(deps: ApiDeps): Router {
  const r = Router();
  const db = deps.catalog.db;

  async function presentWithSummary(id: string) {
    const source = (await getSource(db, id))!;
    return withCdc(source, presentSource(source, await listSchemas(db, id), (await sourceSummaries(db)).get(id)), await getCdcMirror(db, id));
  }

  r.get('/source-types', (_req, res) => {
    res.json(Object.fromEntries(Object.values(connectors).map((c) => [c.spec.name, c.spec])));
  });

  /** Step 2 of seed 001: the credentials checked live, then every table with its sync options. */
  r.post('/sources/db-schema', async (req, res) => {
    const { source_type, ...fields } = connectionCheckSchema.parse(req.body ?? {});
    const connector = resolveConnector(source_type);
    const config = parseConnectionConfig(connector, fields, []);
    await againstSource(() => connector.check(config, { warehouse: deps.warehouse }), '');
    res.json(await againstSource(() => connector.discover(config, { warehouse: deps.warehouse }), ''));
  });

  /**
   * CDC pre-flight. The tables to check: `tables`, and/or the `cdc` entries of seed 001's `schemas[]`;
   * neither = every table the source would offer for CDC; an empty choice = the server and role only.
   */
  r.post('/sources/check-cdc-prerequisites', async (req, res) => {
    const { source_type, tables, schemas, ...fields } = cdcCheckSchema.parse(req.body ?? {});
    const connector = resolveConnector(source_type);
    const config = parseConnectionConfig(connector, fields, []);
    if (!connector.checkCdcPrerequisites) {
      res.json({ valid: false, errors: [`${connector.spec.label} sources do not support CDC`] });
      return;
    }
    const chosen =
      tables === undefined && schemas === undefined
        ? undefined
        : [...(tables ?? []), ...(schemas ?? []).filter((s) => s.sync_type === 'cdc' && s.should_sync !== false).map((s) => s.name)];
    const errors = await againstSource(() => connector.checkCdcPrerequisites!(config, chosen), '');
    res.json({ valid: errors.length === 0, errors });
  });

  r.post('/sources', async (req, res) => {
    const body = createSourceSchema.parse(req.body ?? {});
    const { source, schemas, warnings } = await createSource(deps, body);
    res.status(201).json({ ...presentSource(source, schemas), warnings });
  });

  r.get('/sources', async (_req, res) => {
    await refreshRunState(deps);
    const [sources, summaries, mirrors] = [await listSources(db), await sourceSummaries(db), await listCdcMirrors(db)];
    res.json({ results: sources.map((s) => withCdc(s, presentSource(s, undefined, summaries.get(s.id)), mirrors.get(s.id))) });
  });

  r.get('/sources/:id', async (req, res) => {
    const source = await sourceOr404(db, req.params.id);
    await refreshRunState(deps, source.id);
    res.json(await presentWithSummary(source.id));
  });

  r.patch('/sources/:id', async (req, res) => {
    const source = await sourceOr404(db, req.params.id);
    const body = patchSourceSchema.parse(req.body ?? {});
    const { pending } = await changeSource(deps, source, body);
    // Past the wait bound the prefix change goes on: 202, with the operation that leads to the new prefix.
    if (pending) res.status(202).json({ ...(await presentWithSummary(source.id)), operation: pending });
    else res.json(await presentWithSummary(source.id));
  });

  r.delete('/sources/:id', async (req, res) => {
    const q = deleteSourceQuerySchema.safeParse(req.query);
    if (!q.success) throw fromZod(q.error);
    const source = await sourceOr404(db, req.params.id);
    const outcome = await removeSource(deps, source, { deleteData: q.data.delete_data ?? false });
    if (outcome.done) res.json(outcome.result);
    else res.status(202).json({ id: source.id, deleted: false, operation: outcome.pending });
  });

  r.post('/sources/:id/refresh-schemas', async (req, res) => {
    const source = await sourceOr404(db, req.params.id);
    const { added, gone } = await refreshSchemas(deps, source);
    res.json({ added: added.map((s) => presentSchema(source, s)), missing_at_source: gone });
  });

  // The CDC mirror: pause (the slot then retains WAL), resume, and resync (the way out of a lost slot).
  r.post('/sources/:id/cdc/pause', async (req, res) => {
    res.json(await pauseCdc(deps, await sourceOr404(db, req.params.id)));
  });
  r.post('/sources/:id/cdc/resume', async (req, res) => {
    res.json(await resumeCdc(deps, await sourceOr404(db, req.params.id)));
  });
  r.post('/sources/:id/cdc/resync', async (req, res) => {
    res.status(202).json(await resyncCdc(deps, await sourceOr404(db, req.params.id)));
  });
  // Slot lag over time (empty for a source without CDC): the console's chart.
  r.get('/sources/:id/cdc/lag-history', async (req, res) => {
    const q = cdcLagHistoryQuerySchema.safeParse(req.query);
    if (!q.success) throw fromZod(q.error);
    const source = await sourceOr404(db, req.params.id);
    res.json({ source_id: source.id, hours: q.data.hours, results: await cdcLagHistory(db, source.id, q.data.hours) });
  });

  r.post('/sources/:id/sync-all', async (req, res) => {
    const source = await sourceOr404(db, req.params.id);
    syncAllSchema.parse(req.body ?? {});
    res.status(202).json(await startSyncs(deps, source, await listSchemas(db, source.id)));
  });

  return r;
}
