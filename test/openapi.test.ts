import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { buildOpenApiDocument } from '../api/openapi';

/** Inlines `#/components/...` references (the document's only kind), so a test can read shapes directly. */
function dereference(doc: any): any {
  const resolve = (node: any, seen: string[]): any => {
    if (Array.isArray(node)) return node.map((n) => resolve(n, seen));
    if (!node || typeof node !== 'object') return node;
    if (typeof node.$ref === 'string') {
      if (seen.includes(node.$ref)) return {};
      const target = node.$ref.slice(2).split('/').reduce((o: any, k: string) => o[k], doc);
      if (target === undefined) throw new Error(`unresolved $ref ${node.$ref}`);
      return resolve(target, [...seen, node.$ref]);
    }
    return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, resolve(v, seen)]));
  };
  return resolve(doc, []);
}

/**
 * The OpenAPI document is generated from the zod schemas: it must be valid OpenAPI 3.1 (checked by
 * @seriousme/openapi-schema-validator against the specification's own JSON schema, every $ref resolvable), list every route, and carry
 * the request and response shapes the routes use. Real responses are checked against the same zod
 * schemas in the end-to-end tests.
 */
const validate = (doc: unknown) =>
  JSON.parse(execFileSync(process.execPath, [path.join(__dirname, 'support', 'validate-openapi.mjs')], { input: JSON.stringify(doc), encoding: 'utf8' }));

describe('GET /api/openapi.json document', () => {
  const doc = buildOpenApiDocument() as any;

  test('is valid OpenAPI 3.1', async () => {
    expect(doc.openapi).toBe('3.1.0');
    expect(validate(doc)).toEqual({ valid: true, version: '3.1' });
    // The validator does reject a broken document (so the check above is not vacuous).
    const broken = structuredClone(doc);
    broken.paths['/api/sources'].post.responses['201'] = { content: {} };
    expect(validate(broken).valid).toBe(false);
    expect(() => dereference(doc)).not.toThrow();
  });

  test('lists every route with its method', () => {
    const ops = Object.entries(doc.paths).flatMap(([p, methods]) => Object.keys(methods as object).map((m) => `${m.toUpperCase()} ${p}`));
    expect(ops.sort()).toEqual(
      [
        'GET /health',
        'GET /api/openapi.json',
        'GET /api/source-types',
        'POST /api/sources/db-schema',
        'POST /api/sources/check-cdc-prerequisites',
        'POST /api/sources',
        'GET /api/sources',
        'GET /api/sources/{id}',
        'PATCH /api/sources/{id}',
        'DELETE /api/sources/{id}',
        'POST /api/sources/{id}/refresh-schemas',
        'POST /api/sources/{id}/sync-all',
        'POST /api/sources/{id}/cdc/pause',
        'POST /api/sources/{id}/cdc/resume',
        'POST /api/sources/{id}/cdc/resync',
        'GET /api/sources/{id}/cdc/lag-history',
        'GET /api/sources/{id}/schemas',
        'PATCH /api/schemas/{id}',
        'POST /api/schemas/bulk',
        'POST /api/schemas/{id}/sync',
        'POST /api/schemas/{id}/refresh-schema',
        'GET /api/schemas/{id}/linked-stats',
        'GET /api/jobs',
        'GET /api/platform-info',
        'POST /api/query',
        'POST /api/sources/{id}/webhook',
        'POST /api/sources/{id}/webhook-inputs',
        'GET /api/sources/{id}/webhook-info',
        'POST /webhooks/stripe/{id}',
        'POST /api/destinations',
        'GET /api/destinations',
        'GET /api/destinations/{id}',
        'PATCH /api/destinations/{id}',
        'DELETE /api/destinations/{id}',
        'POST /api/destinations/{id}/test',
        'POST /api/destinations/test',
        'GET /api/destinations/{id}/metrics',
        'GET /api/destinations/{id}/logs',
        'GET /api/alerts',
      ].sort(),
    );
  });

  test('request bodies refuse unknown keys: every object with properties says additionalProperties: false', () => {
    const deref = dereference(doc);
    const open: string[] = [];
    const walk = (node: any, at: string): void => {
      if (Array.isArray(node)) return node.forEach((n, i) => walk(n, `${at}/${i}`));
      if (!node || typeof node !== 'object') return;
      if (node.properties && node.additionalProperties !== false) open.push(at);
      for (const [k, v] of Object.entries(node)) walk(v, `${at}/${k}`);
    };
    let bodies = 0;
    for (const [p, methods] of Object.entries(deref.paths as Record<string, any>)) {
      for (const [m, op] of Object.entries(methods as Record<string, any>)) {
        // The webhook intake's body is the sender's (Stripe's) event, not a request shape of ours.
        if (!op.requestBody || p.startsWith('/webhooks/')) continue;
        bodies++;
        walk(op.requestBody.content['application/json'].schema, `${m.toUpperCase()} ${p}`);
      }
    }
    expect(bodies).toBeGreaterThanOrEqual(8);
    expect(open).toEqual([]);
  });

  test('request and response shapes come from the zod schemas', async () => {
    const deref = dereference(doc);
    const create = deref.paths['/api/sources'].post;
    const body = create.requestBody.content['application/json'].schema;
    expect(body.required).toEqual(['source_type', 'payload']);
    // One payload per source type: its connection fields and schemas[], in one closed object.
    const [postgres, stripe] = body.properties.payload.oneOf;
    const entry = postgres.properties.schemas.items;
    expect(entry.required).toEqual(['name', 'should_sync']);
    expect(entry.properties.sync_frequency.enum).toContain('1min');
    expect(postgres.properties.host.type).toBe('string');
    expect(stripe.properties.stripe_secret_key.type).toBe('string');
    expect(stripe.properties.auth_method.enum).toEqual(['api_key', 'oauth']);
    expect(Object.keys(create.responses).sort()).toEqual(['201', '400', '401', '409']);
    expect(create.responses['201'].content['application/json'].schema.properties.warnings.type).toBe('array');
    expect(create.responses['400'].content['application/json'].schema.required).toEqual(['error', 'message', 'details']);

    const check = deref.paths['/api/sources/db-schema'].post.requestBody.content['application/json'].schema;
    expect(check.oneOf.map((o: any) => [o.properties.source_type.const, o.required])).toEqual([
      ['Postgres', ['source_type', 'host', 'dbname', 'user']],
      ['Stripe', ['source_type', 'stripe_secret_key']],
      ['Pendo', ['source_type', 'integration_key', 'region']],
      ['Files', ['source_type', 'provider', 'tables']],
    ]);
    const cdcCheck = deref.paths['/api/sources/check-cdc-prerequisites'].post.requestBody.content['application/json'].schema;
    expect(Object.keys(cdcCheck.oneOf[0].properties)).toEqual(expect.arrayContaining(['source_type', 'host', 'tables', 'schemas']));

    const bulk = deref.paths['/api/schemas/bulk'].post.requestBody.content['application/json'].schema;
    expect(bulk.oneOf.map((o: any) => o.properties.action.const).sort()).toEqual(['delete_and_resync', 'delete_tables', 'disable', 'set_frequency', 'sync_now']);

    const list = deref.paths['/api/sources/{id}/schemas'].get;
    expect(list.parameters.map((p: any) => `${p.in}:${p.name}`)).toEqual(
      ['path:id', 'query:status', 'query:sync_type', 'query:frequency', 'query:search', 'query:enabled_only', 'query:sort', 'query:order'],
    );
    expect(list.parameters.find((p: any) => p.name === 'status').schema.enum).toEqual(['Running', 'Completed', 'Failed', 'Paused', 'Linked', 'not set up']);
    const schema = list.responses['200'].content['application/json'].schema.properties.results.items;
    expect(Object.keys(schema.properties)).toEqual(expect.arrayContaining(['id', 'table', 'should_sync', 'sync_type', 'status', 'last_synced_at', 'rows_synced']));
    expect(deref.paths['/api/sources/db-schema'].post.responses['200'].content['application/json'].schema.items.required).toEqual(
      expect.arrayContaining(['table', 'incremental_fields', 'detected_primary_keys', 'available_columns']),
    );
  });
});
