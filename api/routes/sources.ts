import { Router } from 'express';
import { getSchema, listSchemas } from '../../catalog/schemas';
import { getSource, listSources } from '../../catalog/sources';
import { connectors } from '../../connectors/registry';
import { triggerSync } from '../../temporal/schedules';
import type { ApiDeps } from '../context';
import { conflict, notFound } from '../errors';
import { presentSchema, presentSource } from '../present';
import { createSource } from '../source-setup';
import { createSourceSchema, uuidSchema } from '../validation';

const isUuid = (id: string) => uuidSchema.safeParse(id).success;

export function sourceRoutes(deps: ApiDeps): Router {
  const r = Router();
  const db = deps.catalog.db;

  async function sourceOr404(id: string) {
    const source = isUuid(id) ? await getSource(db, id) : undefined;
    if (!source) throw notFound(`Source ${id}`);
    return source;
  }

  r.get('/source-types', (_req, res) => {
    res.json(Object.fromEntries(Object.values(connectors).map((c) => [c.spec.name, c.spec])));
  });

  r.post('/sources', async (req, res) => {
    const body = createSourceSchema.parse(req.body ?? {});
    const { source, schemas } = await createSource(deps, body);
    res.status(201).json(presentSource(source, schemas));
  });

  r.get('/sources', async (_req, res) => {
    const sources = await listSources(db);
    res.json({ results: sources.map((s) => presentSource(s)) });
  });

  r.get('/sources/:id', async (req, res) => {
    const source = await sourceOr404(req.params.id);
    res.json(presentSource(source, await listSchemas(db, source.id)));
  });

  r.get('/sources/:id/schemas', async (req, res) => {
    const source = await sourceOr404(req.params.id);
    res.json({ results: (await listSchemas(db, source.id)).map((s) => presentSchema(source, s)) });
  });

  r.post('/schemas/:id/sync', async (req, res) => {
    const schema = isUuid(req.params.id) ? await getSchema(db, req.params.id) : undefined;
    if (!schema) throw notFound(`Schema ${req.params.id}`);
    if (!schema.should_sync) throw conflict(`Schema "${schema.name}" is disabled: enable it before syncing`);
    const source = (await getSource(db, schema.source_id))!;
    await triggerSync(deps.temporal, source, schema);
    res.status(202).json({ schema_id: schema.id, triggered: true });
  });

  return r;
}
