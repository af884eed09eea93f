import { Router } from 'express';
import { getSchema, listSchemas } from '../../catalog/schemas';
import { getSource } from '../../catalog/sources';
import type { ApiDeps } from '../context';
import { badRequest, conflict, fromZod, notFound } from '../errors';
import { presentSchema } from '../present';
import { filterAndSortSchemas } from '../schema-listing';
import { patchSchema, runBulkAction } from '../schema-management';
import { bulkActionSchema, patchSchemaSchema, schemasQuerySchema } from '../schema-requests';
import { refreshRunState, startSync, syncBlocker, withLiveRunState } from '../sync-control';
import { isUuid, sourceOr404 } from './sources';
import { isLinked, linkedStats, refreshLinkedColumns } from '../linked-tables';

export function schemaRoutes(deps: ApiDeps): Router {
  const r = Router();
  const db = deps.catalog.db;

  async function schemaOr404(id: string) {
    const schema = isUuid(id) ? await getSchema(db, id) : undefined;
    if (!schema) throw notFound(`Schema ${id}`);
    return schema;
  }

  r.get('/sources/:id/schemas', async (req, res) => {
    const source = await sourceOr404(db, req.params.id);
    const q = schemasQuerySchema.safeParse(req.query);
    if (!q.success) throw fromZod(q.error);
    await refreshRunState(deps, source.id);
    const rows = filterAndSortSchemas(await listSchemas(db, source.id), q.data);
    res.json({ results: rows.map((s) => presentSchema(source, s)) });
  });

  r.patch('/schemas/:id', async (req, res) => {
    const schema = await schemaOr404(req.params.id);
    const body = patchSchemaSchema.parse(req.body ?? {});
    const { schema: updated, source, warnings, pending } = await patchSchema(deps, schema, body);
    // A rebuild still running past the wait bound: 202, with the operation that leads to the new settings.
    if (pending) res.status(202).json({ ...presentSchema(source, updated), warnings, operation: pending });
    else res.json({ ...presentSchema(source, updated), warnings });
  });

  r.post('/schemas/bulk', async (req, res) => {
    const body = req.body ?? {};
    if (body && typeof body === 'object' && (body as { action?: unknown }).action === 'enable') {
      throw badRequest('Bulk enable is not available: enable schemas one at a time (PATCH /api/schemas/:id), since each needs its sync method and settings', [
        { field: 'action', message: 'there is no bulk enable' },
      ]);
    }
    res.json(await runBulkAction(deps, bulkActionSchema.parse(body)));
  });

  /** "Sync now" for one schema: a run starts at once; one in flight (as Temporal says) is a 409. */
  r.post('/schemas/:id/sync', async (req, res) => {
    const [schema] = await withLiveRunState(deps, [await schemaOr404(req.params.id)]);
    const reason = syncBlocker(schema);
    if (reason === 'already syncing') throw conflict(`Schema "${schema.name}" is already syncing: a run is in flight; sync again once it has finished`);
    if (reason) throw conflict(`Schema "${schema.name}" is ${reason === 'disabled' ? 'disabled: enable it before syncing' : `not syncable: ${reason}`}`);
    await startSync(deps, (await getSource(db, schema.source_id))!, schema);
    res.status(202).json({ schema_id: schema.id, triggered: true });
  });

  /** Linked tables: the files' columns inferred again (type overrides kept). */
  r.post('/schemas/:id/refresh-schema', async (req, res) => {
    const schema = await schemaOr404(req.params.id);
    if (!isLinked(schema)) throw conflict(`Schema "${schema.name}" is not linked: refresh-schema re-infers the columns of linked file tables`);
    const updated = await refreshLinkedColumns(deps, schema);
    res.json(presentSchema((await getSource(db, schema.source_id))!, updated));
  });

  /** Linked tables, on request: what the pattern matches now, and the rows the engine counts. */
  r.get('/schemas/:id/linked-stats', async (req, res) => {
    const schema = await schemaOr404(req.params.id);
    if (!isLinked(schema)) throw conflict(`Schema "${schema.name}" is not linked`);
    res.json(await linkedStats(deps, schema));
  });

  return r;
}
