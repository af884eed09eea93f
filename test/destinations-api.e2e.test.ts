import crypto from 'node:crypto';
import fs from 'node:fs';
import { Client, Connection } from '@temporalio/client';
import fc from 'fast-check';
import { destinationResponse, destinationTestResult } from '../api/destination-schemas';
import { destinationWorkflowId } from '../temporal/destination-workflows';
import { asSourceUser, eventually, grantCdc } from './support/cdc';
import { makeDataDir, query, startPlatform, type RunningPlatform } from './support/platform';
import { RecordingEndpoint, type RecordedRequest } from './support/recording-endpoint';
import { connectionPayload, createSourceDb, type SourceDb } from './support/source-db';

const MASK = '********';

/** Standard Webhooks verification, written out here from the specification (not the platform's code). */
function verifySignature(secret: string, req: RecordedRequest): boolean {
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const expected = crypto.createHmac('sha256', key).update(`${req.headers['webhook-id']}.${req.headers['webhook-timestamp']}.${req.body}`).digest('base64');
  return String(req.headers['webhook-signature']).split(' ').includes(`v1,${expected}`);
}

/**
 * /api/destinations on the real platform: validation that names the field (or the path inside the template, or
 * where the filter expression is wrong), secrets masked in every answer, the signing secret shown once, list
 * filters, PATCH and its health reset, DELETE stopping the delivery workflow.
 */
describe('destinations API', () => {
  let db: SourceDb;
  let platform: RunningPlatform;
  let dataDir: string;
  let sourceId: string;
  let temporal: Client;
  let endpoint: RecordingEndpoint;

  beforeAll(async () => {
    endpoint = await RecordingEndpoint.start();
    db = await createSourceDb('dest');
    await grantCdc(db);
    await asSourceUser(db, `CREATE TABLE orders (id bigint PRIMARY KEY, status text NOT NULL, amount numeric(10, 2) NOT NULL);
      INSERT INTO orders VALUES (1, 'paid', 150.50), (2, 'open', 20)`);
    dataDir = makeDataDir('dest');
    platform = await startPlatform({ dataDir, env: { TRIBUTARY_DESTINATIONS_ALLOW_PRIVATE: '1', TRIBUTARY_CDC_FLUSH_MS: '200' } });
    const created = await platform.api('POST', '/api/sources', {
      source_type: 'Postgres',
      prefix: 'shop',
      payload: { ...connectionPayload(db), schemas: [{ name: 'orders', should_sync: true, sync_type: 'cdc', sync_frequency: '1min', primary_key_columns: ['id'] }] },
    });
    expect(created.status).toBe(201);
    sourceId = created.body.id;
    await eventually(async () => {
      expect((await platform.api('GET', `/api/sources/${sourceId}`)).body.cdc.status).toBe('Streaming');
      expect(await query(platform, 'SELECT toString(count()) AS n FROM shop_orders FINAL')).toEqual([{ n: '2' }]);
    }, 120_000);
    temporal = new Client({ connection: await Connection.connect({ address: platform.temporalAddress }) });
  }, 180_000);

  afterAll(async () => {
    if (process.env.TRIBUTARY_TEST_DUMP) fs.writeFileSync(process.env.TRIBUTARY_TEST_DUMP, platform?.output() ?? '');
    await endpoint?.stop();
    await temporal?.connection.close();
    await platform?.stop();
    await db?.drop();
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });

  const good = () => ({
    type: 'webhook',
    name: 'paid orders to chat',
    url: `${endpoint.url}/hook?team=growth`,
    method: 'POST',
    headers: { Authorization: 'Bearer sk_live_abc123', 'X-Team': 'growth', 'X-Custom': { value: 'hush-hush', secret: true } },
    body: { text: 'Order ${row.id} paid: ${row.amount}', amount: { $eval: 'row.amount' } },
    filters: { source_id: sourceId, tables: ['shop_orders'], operations: ['insert', 'update'], expression: "status = 'paid' AND amount > 100" },
  });

  const fields = (res: { body: any }) => (res.body.details ?? []).map((d: { field: string }) => d.field);

  test('bad input is a 400 naming the field, the path inside the template, or where the expression is wrong; nothing stored', async () => {
    const cases: [string, (b: any) => void, string, RegExp?][] = [
      ['unknown key, with the one meant', (b) => (b.batch_sise = 5), 'batch_sise', /did you mean "batch_size"/],
      ['type', (b) => (b.type = 'email'), 'type', /webhook/],
      ['url scheme', (b) => (b.url = 'ftp://example.com/x'), 'url', /http/],
      ['url credentials', (b) => (b.url = 'https://user:pw@example.com/x'), 'url', /credentials/],
      ['method', (b) => (b.method = 'TRACE'), 'method'],
      ['reserved header', (b) => (b.headers['Webhook-Signature'] = 'x'), 'headers.Webhook-Signature', /sets this header itself/],
      ['header line break', (b) => (b.headers['X-Team'] = 'a\r\nX-Evil: 1'), 'headers.X-Team', /line break/],
      ['unknown header key', (b) => (b.headers['X-Custom'] = { value: 'v', secrett: true }), 'headers.X-Custom.secrett', /did you mean "secret"/],
      ['template syntax', (b) => (b.body.text = 'Order ${row.id paid'), 'body.text', /syntax error/],
      ['template operator', (b) => (b.body.blocks = [{ x: { $evall: 'row.id' } }]), 'body.blocks[0].x["$evall"]', /did you mean \$eval/],
      ['unknown table', (b) => (b.filters.tables = ['shop_nope']), 'filters.tables.0', /no warehouse table shop_nope/],
      ['operation', (b) => (b.filters.operations = ['upsert']), 'filters.operations.0'],
      ['expression syntax', (b) => (b.filters.expression = "status = = 'paid'"), 'filters.expression', /position 10/],
      ['expression column', (b) => (b.filters.expression = 'nope > 1'), 'filters.expression', /unknown column nope/],
      ['expression subquery', (b) => (b.filters.expression = 'id IN (SELECT id FROM shop_orders)'), 'filters.expression', /subquery/],
      ['batch_size', (b) => (b.batch_size = 0), 'batch_size'],
      ['timeout_ms', (b) => (b.timeout_ms = 'soon'), 'timeout_ms'],
      ['start_from', (b) => (b.start_from = 'yesterday'), 'start_from'],
      ['start_from future', (b) => (b.start_from = '2999-01-01T00:00:00Z'), 'start_from', /past/],
    ];
    for (const [what, mutate, field, message] of cases) {
      const body = good();
      mutate(body);
      const res = await platform.api('POST', '/api/destinations', body);
      expect({ what, status: res.status, fields: fields(res) }).toEqual({ what, status: 400, fields: expect.arrayContaining([field]) });
      if (message) expect(res.body.details.find((d: any) => d.field === field).message).toMatch(message);
    }
    const link = await platform.api('POST', '/api/destinations', { ...good(), url: 'http://169.254.169.254/latest/meta-data' });
    expect({ status: link.status, fields: fields(link) }).toEqual({ status: 400, fields: ['url'] });
    expect((await platform.api('GET', '/api/destinations')).body.results).toEqual([]);
  });

  let created: any;
  /** The id of the change that made order 2 paid (the one change its filters pass). */
  let paidChangeId: string;

  test('create: 201, secret headers masked, the whsec_ secret shown once, the delivery workflow started', async () => {
    // Created disabled: its delivery waits, so the changes after its checkpoint stay there until it is enabled.
    const res = await platform.api('POST', '/api/destinations', { ...good(), enabled: false });
    expect(res.status).toBe(201);
    created = destinationResponse.parse(res.body);
    expect(created).toMatchObject({
      type: 'webhook',
      method: 'POST',
      headers: { Authorization: MASK, 'X-Team': 'growth', 'X-Custom': MASK },
      enabled: false,
      health_state: 'healthy',
      batch_size: 1,
      timeout_ms: 10_000,
      body: good().body,
      filters: good().filters,
    });
    expect(created.secret_headers.sort()).toEqual(['Authorization', 'X-Custom']);
    expect(created.signing_secret).toMatch(/^whsec_[A-Za-z0-9+/=]{20,}$/);
    expect(JSON.stringify(res.body)).not.toMatch(/sk_live_abc123|hush-hush/);
    const again = await platform.api('GET', `/api/destinations/${created.id}`);
    expect(again.status).toBe(200);
    expect(again.body.signing_secret).toBe(MASK);
    expect(JSON.stringify(again.body)).not.toMatch(/sk_live_abc123|hush-hush|whsec_/);
    expect(again.body.checkpoint).toEqual(created.checkpoint);
    expect(again.body.lag).toEqual({ changes_after_checkpoint: 0, oldest_after_checkpoint_at: null });
    const wf = await temporal.workflow.getHandle(destinationWorkflowId(created.id)).describe();
    expect(wf.type).toBe('deliverDestination');
    // Nothing secret in the workflow's input.
    const history = JSON.stringify(await temporal.workflow.getHandle(destinationWorkflowId(created.id)).fetchHistory());
    expect(history).not.toMatch(/sk_live_abc123|hush-hush|whsec_/);
    expect(Buffer.from(history).toString()).not.toContain(Buffer.from('sk_live_abc123').toString('base64'));
  });

  test('list filters: enabled, health_state, table, source_id', async () => {
    const other = await platform.api('POST', '/api/destinations', { type: 'webhook', name: 'all changes', url: 'http://127.0.0.1:9/x' });
    expect(other.status).toBe(201);
    const ids = async (qs: string) => {
      const res = await platform.api('GET', `/api/destinations${qs}`);
      expect(res.status).toBe(200);
      return res.body.results.map((d: any) => d.id).sort();
    };
    expect(await ids('')).toEqual([created.id, other.body.id].sort());
    expect(await ids('?enabled=true')).toEqual([other.body.id]);
    expect(await ids('?enabled=false')).toEqual([created.id]);
    expect(await ids('?health_state=degraded')).toEqual([]);
    expect(await ids('?health_state=disabled')).toEqual([]);
    expect(await ids(`?source_id=${sourceId}`)).toEqual([created.id]);
    expect(await ids('?table=shop_orders')).toEqual([created.id, other.body.id].sort());
    expect(await ids('?table=shop_customers')).toEqual([other.body.id]);
    const bad = await platform.api('GET', '/api/destinations?helth_state=healthy');
    expect({ status: bad.status, fields: fields(bad) }).toEqual({ status: 400, fields: ['helth_state'] });
    expect(bad.body.details[0].message).toMatch(/did you mean "health_state"/);
    expect((await platform.api('GET', '/api/destinations?enabled=yes')).status).toBe(400);
    expect((await platform.api('DELETE', `/api/destinations/${other.body.id}`)).status).toBe(200);
  });

  test('a change after create is counted as lag; POST /:id/test sends it rendered and signed, and answers with secrets masked', async () => {
    await db.admin.query(`UPDATE orders SET status = 'paid', amount = 250 WHERE id = 2`);
    await eventually(async () => {
      const d = (await platform.api('GET', `/api/destinations/${created.id}`)).body;
      expect(d.lag.changes_after_checkpoint).toBeGreaterThanOrEqual(1);
      expect(Date.parse(d.lag.oldest_after_checkpoint_at)).toBeGreaterThan(Date.parse(created.created_at) - 60_000);
    }, 60_000);
    const before = endpoint.requests.length;
    const res = await platform.api('POST', `/api/destinations/${created.id}/test`, { table: 'shop_orders' });
    expect(res.status).toBe(200);
    const result = destinationTestResult.parse(res.body);
    expect(endpoint.requests.length).toBe(before + 1);
    const sent = endpoint.requests[before];
    // What arrived: the real secret values, the rendered body (a number stays a number), a valid signature.
    expect(sent.method).toBe('POST');
    expect(sent.path).toBe('/hook?team=growth');
    expect(sent.headers).toMatchObject({ authorization: 'Bearer sk_live_abc123', 'x-custom': 'hush-hush', 'x-team': 'growth', 'content-type': 'application/json' });
    expect(JSON.parse(sent.body)).toEqual({ text: 'Order 2 paid: 250', amount: 250 });
    expect(sent.headers['webhook-id']).toMatch(/^chg_[0-9a-f]{32}$/);
    expect(verifySignature(created.signing_secret, sent)).toBe(true);
    expect(verifySignature(`whsec_${Buffer.from('not the secret').toString('base64')}`, sent)).toBe(false);
    // What the answer says: the request as sent with the secrets masked, the response, the change it came from.
    expect(result.change).toMatchObject({ id: sent.headers['webhook-id'], table: 'shop_orders', op: 'update', from: 'change_log' });
    paidChangeId = result.change.id;
    expect(result.matches_filters).toBe(true);
    expect(result.request.headers).toMatchObject({ authorization: MASK, 'x-custom': MASK, 'x-team': 'growth', 'webhook-id': sent.headers['webhook-id'] });
    expect(result.request.body).toBe(sent.body);
    expect(result.response).toMatchObject({ status: 200, body: '{"ok":true}', truncated: false });
    expect(result.error).toBeNull();
    expect(result.duration_ms).toBeGreaterThan(0);
    expect(JSON.stringify(res.body)).not.toMatch(/sk_live_abc123|hush-hush|whsec_/);
    // The same change sent again keeps its id (a receiver deduplicates on it).
    const again = await platform.api('POST', `/api/destinations/${created.id}/test`, { table: 'shop_orders' });
    expect(endpoint.requests[before + 1].headers['webhook-id']).toBe(sent.headers['webhook-id']);
    expect(again.body.change.id).toBe(result.change.id);
  });

  test('test with a given row, an endpoint that fails with a long body, and nothing to render from', async () => {
    endpoint.respond = (_req, r) => {
      r.writeHead(503, { 'content-type': 'text/plain', 'retry-after': '5' });
      r.end('x'.repeat(10_000));
    };
    try {
      const res = await platform.api('POST', `/api/destinations/${created.id}/test`, { row: { id: 9, status: 'open', amount: 5 } });
      expect(res.status).toBe(200);
      expect(res.body.change).toMatchObject({ table: 'shop_orders', op: 'insert', from: 'given_row' });
      expect(res.body.matches_filters).toBe(false);
      expect(JSON.parse(endpoint.requests.at(-1)!.body)).toEqual({ text: 'Order 9 paid: 5', amount: 5 });
      expect(res.body.response).toMatchObject({ status: 503, truncated: true, headers: expect.objectContaining({ 'retry-after': '5' }) });
      expect(res.body.response.body).toHaveLength(4096);
    } finally {
      endpoint.respond = (_req, r) => {
        r.writeHead(200, { 'content-type': 'application/json' });
        r.end('{"ok":true}');
      };
    }
    const none = await platform.api('POST', `/api/destinations/${created.id}/test`, { table: 'shop_orders', op: 'delete' });
    expect({ status: none.status, fields: fields(none) }).toEqual({ status: 400, fields: ['table'] });
    expect(none.body.details[0].message).toMatch(/no delete change of shop_orders/);
    const unknown = await platform.api('POST', `/api/destinations/${created.id}/test`, { tabel: 'shop_orders' });
    expect(unknown.body.details[0]).toEqual({ field: 'tabel', message: expect.stringMatching(/did you mean "table"/) });
    expect((await platform.api('POST', '/api/destinations/00000000-0000-0000-0000-000000000000/test', {})).status).toBe(404);
  });

  test('POST /api/destinations/test: an unsaved configuration, signed with a one-off secret it shows; network errors and refused addresses', async () => {
    const before = endpoint.requests.length;
    const res = await platform.api('POST', '/api/destinations/test', {
      destination: { type: 'webhook', url: `${endpoint.url}/unsaved`, method: 'PUT', headers: { 'X-Api-Key': 'k-1' }, body: { id: { $eval: 'row.id' }, ok: { $eval: "op == 'update'" } } },
      table: 'shop_orders',
    });
    expect(res.status).toBe(200);
    const sent = endpoint.requests[before];
    expect(sent).toMatchObject({ method: 'PUT', path: '/unsaved', headers: expect.objectContaining({ 'x-api-key': 'k-1' }) });
    expect(JSON.parse(sent.body)).toEqual({ id: 2, ok: true });
    expect(res.body.signing_secret).toMatch(/^whsec_/);
    expect(verifySignature(res.body.signing_secret, sent)).toBe(true);
    expect(res.body.request.headers['x-api-key']).toBe(MASK);

    const bad = await platform.api('POST', '/api/destinations/test', { destination: { type: 'webhook', url: endpoint.url, body: { a: '${row.id' } }, row: { id: 1 } });
    expect({ status: bad.status, fields: fields(bad) }).toEqual({ status: 400, fields: ['destination.body.a'] });
    const renderFails = await platform.api('POST', '/api/destinations/test', { destination: { type: 'webhook', url: endpoint.url, body: { a: { $eval: 'row.nope' } } }, row: { id: 1 } });
    expect({ status: renderFails.status, error: renderFails.body.error, fields: fields(renderFails) }).toEqual({ status: 400, error: 'render_error', fields: ['destination.body.a'] });

    const closed = await RecordingEndpoint.start();
    const closedUrl = closed.url;
    await closed.stop();
    const down = await platform.api('POST', '/api/destinations/test', { destination: { type: 'webhook', url: closedUrl }, row: { id: 1 } });
    expect(down.status).toBe(200);
    expect(down.body.response).toBeNull();
    expect(down.body.error).toMatch(/ECONNREFUSED/);

    const metadata = await platform.api('POST', '/api/destinations/test', { destination: { type: 'webhook', url: 'http://169.254.169.254/latest' }, row: { id: 1 } });
    expect({ status: metadata.status, fields: fields(metadata) }).toEqual({ status: 400, fields: ['destination.url'] });
  });

  test('PATCH: partial, validated, secrets kept when sent back masked, health reset when a stopped destination is edited', async () => {
    const bad = await platform.api('PATCH', `/api/destinations/${created.id}`, { filters: { tables: ['shop_orders'], expression: 'amount >' } });
    expect({ status: bad.status, fields: fields(bad) }).toEqual({ status: 400, fields: ['filters.expression'] });
    expect((await platform.api('PATCH', `/api/destinations/${created.id}`, {})).status).toBe(400);
    expect((await platform.api('PATCH', `/api/destinations/${created.id}`, { type: 'email' })).status).toBe(400);
    expect((await platform.api('PATCH', '/api/destinations/00000000-0000-0000-0000-000000000000', { name: 'x' })).status).toBe(404);
    expect((await platform.api('PATCH', '/api/destinations/not-an-id', { name: 'x' })).status).toBe(404);

    const renamed = await platform.api('PATCH', `/api/destinations/${created.id}`, { name: 'renamed', batch_size: 10 });
    expect(renamed.status).toBe(200);
    expect(destinationResponse.parse(renamed.body)).toMatchObject({ name: 'renamed', batch_size: 10, url: created.url, headers: created.headers, body: created.body });

    // The answer's headers sent back as they are: the masked ones keep their values, a new one is added.
    const headers = { ...renamed.body.headers, 'X-Api-Key': 'key-123' };
    const withKey = await platform.api('PATCH', `/api/destinations/${created.id}`, { headers });
    expect(withKey.status).toBe(200);
    expect(withKey.body.headers).toEqual({ Authorization: MASK, 'X-Team': 'growth', 'X-Custom': MASK, 'X-Api-Key': MASK });
    const unknownMask = await platform.api('PATCH', `/api/destinations/${created.id}`, { headers: { 'X-Other-Token': MASK } });
    expect({ status: unknownMask.status, fields: fields(unknownMask) }).toEqual({ status: 400, fields: ['headers.X-Other-Token'] });

    // body: null removes the template (the change itself is sent).
    const noBody = await platform.api('PATCH', `/api/destinations/${created.id}`, { body: null });
    expect(noBody.status).toBe(200);
    expect(noBody.body.body).toBeUndefined();

    // start_from moves the checkpoint: a replay from before the first sync takes its changes again.
    const replay = await platform.api('PATCH', `/api/destinations/${created.id}`, { start_from: '2020-01-01T00:00:00Z' });
    expect(replay.status).toBe(200);
    expect(BigInt(replay.body.checkpoint.batch)).toBeLessThanOrEqual(BigInt(created.checkpoint.batch));

    const disabled = await platform.api('PATCH', `/api/destinations/${created.id}`, { enabled: false });
    expect(disabled.body.enabled).toBe(false);
    const enabled = await platform.api('PATCH', `/api/destinations/${created.id}`, { enabled: true, body: { text: '${row.status}' } });
    expect(enabled.body).toMatchObject({ enabled: true, health_state: 'healthy', body: { text: '${row.status}' } });

    // Enabled, its delivery sends the change that waited (the paid order) with the new template, batched (batch_size
    // 10: an array, its id the batch's), signed with the secret shown at create, and the lag goes to nothing.
    const batchOfOne = `bat_${crypto.createHash('sha256').update(paidChangeId).digest('hex').slice(0, 32)}`;
    await endpoint.waitFor((reqs) => reqs.some((r) => r.headers['webhook-id'] === batchOfOne), 60_000, 'the delivery of the paid order');
    const delivered = endpoint.requests.find((r) => r.headers['webhook-id'] === batchOfOne)!;
    expect(JSON.parse(delivered.body)).toEqual([{ text: 'paid' }]);
    expect(verifySignature(created.signing_secret, delivered)).toBe(true);
    expect(delivered.headers).toMatchObject({ authorization: 'Bearer sk_live_abc123', 'x-api-key': 'key-123' });
    await eventually(async () => expect((await platform.api('GET', `/api/destinations/${created.id}`)).body.lag).toEqual({ changes_after_checkpoint: 0, oldest_after_checkpoint_at: null }), 60_000);
  });

  test('hundreds of random malformed bodies: each a 4xx naming the problem, never a 5xx, nothing stored or changed', async () => {
    const snapshot = async () => JSON.stringify((await platform.api('GET', '/api/destinations')).body.results.map((d: any) => ({ ...d, lag: null })));
    const before = await snapshot();
    const notString = fc.oneof(fc.integer(), fc.boolean(), fc.constant(null), fc.array(fc.jsonValue(), { maxLength: 3 }), fc.dictionary(fc.string(), fc.jsonValue(), { maxKeys: 3 }));
    // Not a number at all (an integer could be a valid size).
    const notNumber = fc.oneof(fc.boolean(), fc.constant(null), fc.string(), fc.array(fc.jsonValue(), { maxLength: 3 }), fc.dictionary(fc.string(), fc.jsonValue(), { maxKeys: 3 }));
    const notUrl = fc.oneof(notString, fc.string().filter((u) => !/https?:/i.test(u)), fc.constantFrom('ftp://x.com', 'http://', 'https://u:p@x.com', 'http://169.254.169.254/', 'http://[fe80::1]/'));
    // Strings with no comment or quote in them: whatever they are, the broken tail stays broken.
    const plain = fc.string({ maxLength: 20 }).filter((x) => !/[-#/'"`\\]/.test(x));
    const badField: fc.Arbitrary<Record<string, unknown>> = fc.oneof(
      fc.record({ type: fc.oneof(notString, fc.string().filter((t) => t !== 'webhook')) }),
      fc.record({ name: fc.oneof(notString, fc.constant(''), fc.constant('   ')) }),
      fc.record({ url: notUrl }),
      fc.record({ method: fc.oneof(notString, fc.string().filter((m) => !['POST', 'PUT', 'PATCH', 'GET', 'DELETE'].includes(m))) }),
      fc.record({ headers: fc.oneof(fc.integer(), fc.string(), fc.array(fc.string(), { minLength: 1, maxLength: 2 })) }),
      fc.record({ headers: fc.record({ 'Bad Name': fc.string() }) }),
      fc.record({ headers: fc.record({ 'X-Ok': fc.oneof(fc.integer(), fc.boolean(), fc.constant(null), fc.string().map((v) => `${v}\n`)) }) }),
      fc.record({ body: plain.map((x) => ({ text: `Order \${${x}` })) }),
      fc.record({ body: fc.constantFrom({ a: { $evl: 'row.id' } }, { a: { $eval: 'row.id', b: 1 } }, { a: { $eval: 'rows.id' } }, ['${)}']) }),
      fc.record({ filters: fc.oneof(fc.integer(), fc.string(), fc.record({ tables: fc.oneof(fc.string(), fc.array(fc.string({ minLength: 1 }).map((t) => `nope_${t}`), { minLength: 1, maxLength: 2 })) })) }),
      fc.record({ filters: fc.record({ tables: fc.constant(['shop_orders']), expression: plain.map((x) => `${x} = = `) }) }),
      fc.record({ filters: fc.record({ operations: fc.array(fc.string().filter((o) => !['insert', 'update', 'delete'].includes(o)), { minLength: 1, maxLength: 2 }) }) }),
      fc.record({ batch_size: fc.oneof(notNumber, fc.integer({ max: 0 }), fc.integer({ min: 1001 }), fc.double({ min: 1.1, max: 9.9, noInteger: true })) }),
      fc.record({ timeout_ms: fc.oneof(notNumber, fc.integer({ max: 99 }), fc.integer({ min: 120_001 })) }),
      fc.record({ enabled: fc.oneof(fc.integer(), fc.string(), fc.constant(null)) }),
      fc.record({ start_from: fc.oneof(notString, fc.string().filter((x) => x !== 'now' && Number.isNaN(Date.parse(x))), fc.constant('2999-01-01T00:00:00Z')) }),
      fc.record({ [`x_${Math.random().toString(36).slice(2, 6)}`]: fc.jsonValue() }),
    );
    const expectClientError = (res: { status: number; body: any }, body: unknown) => {
      const ok = res.status >= 400 && res.status < 500 && typeof res.body?.error === 'string' && Array.isArray(res.body?.details) && res.body.details.length > 0 &&
        res.body.details.every((d: any) => typeof d.message === 'string' && typeof d.field === 'string');
      if (!ok) throw new Error(`body ${JSON.stringify(body)} → ${res.status} ${JSON.stringify(res.body)}`);
    };
    await fc.assert(
      fc.asyncProperty(badField, async (bad) => {
        const body = { ...good(), ...bad };
        expectClientError(await platform.api('POST', '/api/destinations', body), body);
        const { type: _t, ...patch } = bad;
        if (Object.keys(patch).length && !('start_from' in patch && patch.start_from === undefined)) expectClientError(await platform.api('PATCH', `/api/destinations/${created.id}`, patch), patch);
      }),
      { numRuns: 150 },
    );
    expect(await snapshot()).toBe(before);
  });

  test('DELETE: the row goes and the delivery workflow is terminated', async () => {
    const res = await platform.api('DELETE', `/api/destinations/${created.id}`);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ id: created.id, deleted: true, delivery_terminated: true });
    expect((await platform.api('GET', `/api/destinations/${created.id}`)).status).toBe(404);
    expect((await platform.api('DELETE', `/api/destinations/${created.id}`)).status).toBe(404);
    const wf = await temporal.workflow.getHandle(destinationWorkflowId(created.id)).describe();
    expect(wf.status.name).toBe('TERMINATED');
  });
});
