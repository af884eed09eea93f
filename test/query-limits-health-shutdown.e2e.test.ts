import fs from 'node:fs';
import path from 'node:path';
import { isRunning, makeDataDir, readProc, startPlatform, type RunningPlatform } from './support/platform';

/**
 * One user query must not stall the platform: queries are bounded (time, memory, result size) and cannot lift
 * their bounds, /health says when the warehouse does not answer and what it is busy with, a stop ends within
 * 30 s whatever the engine is doing, and a start that fails exits non-zero with nothing left running.
 */
const HEAVY = 'SELECT count() FROM numbers(1000000000000) WHERE sipHash64(number) = 0';

/** Processes whose command line names the data dir: the engine, the Temporal dev server and its guard. */
function processesOf(dataDir: string): number[] {
  return fs
    .readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e) && Number(e) !== process.pid)
    .map(Number)
    .filter((pid) => isRunning(pid) && (readProc(pid, 'cmdline') ?? '').includes(dataDir));
}

async function waitFor<T>(what: string, cond: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not reached within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('a user query cannot stall the platform', () => {
  let p: RunningPlatform;

  beforeAll(async () => {
    p = await startPlatform({
      dataDir: makeDataDir('limits'),
      env: {
        TRIBUTARY_QUERY_TIMEOUT_SECONDS: '4',
        TRIBUTARY_QUERY_MAX_MEMORY_BYTES: '100000000',
        TRIBUTARY_QUERY_MAX_RESULT_ROWS: '1000',
        TRIBUTARY_QUERY_MAX_RESULT_BYTES: '200000',
        // One session per lane: a second user query waits in the platform's queue (what a client gone drops).
        TRIBUTARY_ENGINE_SESSIONS: '1',
      },
    });
  });

  afterAll(async () => {
    const engine = p?.enginePid();
    if (engine) process.kill(engine, 'SIGCONT');
    await p?.kill();
    if (p) fs.rmSync(p.dataDir, { recursive: true, force: true });
  });

  test('a query over a limit is a 400 naming the limit and its variable; the next query answers', async () => {
    const cases: [string, string, string][] = [
      [HEAVY, 'query_timeout', 'TRIBUTARY_QUERY_TIMEOUT_SECONDS'],
      ['SELECT number FROM numbers(1001)', 'query_result_too_large', 'TRIBUTARY_QUERY_MAX_RESULT_ROWS'],
      ['SELECT repeat(toString(number), 1000) FROM numbers(500)', 'query_result_too_large', 'TRIBUTARY_QUERY_MAX_RESULT_BYTES'],
      ['SELECT groupArray(number) FROM numbers(100000000)', 'query_memory_limit', 'TRIBUTARY_QUERY_MAX_MEMORY_BYTES'],
    ];
    for (const [sql, error, env] of cases) {
      const res = await p.api('POST', '/api/query', { sql });
      expect({ sql, status: res.status, error: res.body.error }).toEqual({ sql, status: 400, error });
      expect(res.body.message).toContain(env);
      expect(res.body.details).toEqual([{ field: 'sql', message: expect.stringContaining(env) }]);
      const next = await p.api('POST', '/api/query', { sql: 'SELECT 1 AS one' });
      expect(next).toMatchObject({ status: 200, body: { rows: [{ one: 1 }] } });
    }
    expect((await p.api('POST', '/api/query', { sql: 'SELECT number FROM numbers(1000)' })).body.row_count).toBe(1000);
  });

  test('a query cannot lift its limits: SETTINGS and SET are refused with a 400', async () => {
    for (const sql of [`${HEAVY} SETTINGS max_execution_time = 0`, 'SELECT number FROM numbers(2000) SETTINGS max_result_rows = 0', 'SET max_result_rows = 0', 'SET readonly = 0']) {
      const res = await p.api('POST', '/api/query', { sql });
      expect({ sql, status: res.status, error: res.body.error }).toEqual({ sql, status: 400, error: expect.stringMatching(/^(forbidden_setting|forbidden_query)$/) });
      expect(res.body.details[0].field).toBe('sql');
    }
  });

  test('/health: degraded while the engine does not answer, naming what runs; a client gone drops its waiting query', async () => {
    const engine = p.enginePid()!;
    expect(engine).toBeGreaterThan(0);
    process.kill(engine, 'SIGSTOP'); // an engine busy for as long as this test wants
    try {
      const heavy = p.api('POST', '/api/query', { sql: HEAVY });
      const gone = new AbortController();
      const waiting = fetch(`${p.url}/api/query`, {
        method: 'POST',
        headers: { authorization: `Bearer ${p.token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ sql: 'SELECT 4242 AS waited' }),
        signal: gone.signal,
      }).catch(() => 'aborted');
      const degraded = await waitFor('a degraded /health naming both queries', async () => {
        const res = await p.api('GET', '/health');
        const texts = (res.body.warehouse?.running ?? []).map((q: { query: string }) => q.query).join('\n');
        return res.status === 503 && texts.includes('sipHash64') && texts.includes('4242') && res;
      });
      expect(degraded.body).toMatchObject({ status: 'degraded', warehouse: { mode: 'embedded', status: 'degraded', error: expect.stringMatching(/did not answer within/) } });
      expect(degraded.body.warehouse.running).toContainEqual({ session: 'readonly', query: expect.stringContaining('sipHash64'), age_ms: expect.any(Number), state: 'running' });
      expect(degraded.body.warehouse.running).toContainEqual(expect.objectContaining({ query: expect.stringContaining('4242'), state: 'queued' }));
      expect(degraded.body.temporal.status).toBe('ok');
      // Public: what runs, without the queries' text (users' data) unless the caller has the token.
      const anonymous = await p.api('GET', '/health', undefined, { token: null });
      expect(anonymous.status).toBe(503);
      expect(anonymous.body.warehouse.running).toContainEqual({ session: 'readonly', age_ms: expect.any(Number), state: 'running' });
      expect(JSON.stringify(anonymous.body)).not.toMatch(/sipHash64|4242/);

      gone.abort();
      expect(await waiting).toBe('aborted');
      await waitFor('the abandoned query dropped', async () => {
        const res = await p.api('GET', '/health');
        const texts = (res.body.warehouse?.running ?? []).map((q: { query: string }) => q.query).join('\n');
        return res.status === 503 && texts.includes('sipHash64') && !texts.includes('4242');
      });

      process.kill(engine, 'SIGCONT');
      expect(await heavy).toMatchObject({ status: 400, body: { error: 'query_timeout' } });
      await waitFor('a healthy warehouse again', async () => (await p.api('GET', '/health')).status === 200);
    } finally {
      process.kill(engine, 'SIGCONT');
    }
  });

  test('SIGTERM while the engine is stuck under queries: the platform exits within 30 s and leaves no process behind', async () => {
    const engine = p.enginePid()!;
    const before = processesOf(p.dataDir);
    expect(before).toContain(engine);
    expect(before.length).toBeGreaterThanOrEqual(3); // the engine, the Temporal dev server and its guard
    // Queries that would take minutes, and an engine that answers nothing at all: the worst it can do.
    const queries = [HEAVY, `${HEAVY} AND number > 1`, 'SELECT 1'].map((sql) => p.api('POST', '/api/query', { sql }).catch(() => undefined));
    process.kill(engine, 'SIGSTOP');
    await waitFor('the queries waiting on the engine', async () => {
      const res = await p.api('GET', '/health');
      return res.status === 503 && (res.body.warehouse?.running ?? []).some((q: { query: string }) => q.query.includes('sipHash64'));
    });
    const health = p.api('GET', '/health').catch(() => undefined);
    process.kill(p.pid, 'SIGTERM');
    await waitFor('the platform exited', () => !isRunning(p.pid), 30_000);
    await waitFor('every process of the platform gone', () => processesOf(p.dataDir).length === 0, 10_000);
    await Promise.all([...queries, health]);
  });
});

describe('a start that fails', () => {
  test('exits non-zero with the cause, and stops what it had started (the Temporal dev server, the engine)', async () => {
    const dataDir = makeDataDir('start-fails');
    // A warehouse the engine cannot load: a database whose metadata does not parse.
    fs.mkdirSync(path.join(dataDir, 'warehouse', 'metadata'), { recursive: true });
    fs.writeFileSync(path.join(dataDir, 'warehouse', 'metadata', 'tributary.sql'), 'not a database (((');
    try {
      await expect(startPlatform({ dataDir, env: { TRIBUTARY_ENGINE_LOCK_WAIT_MS: '3600000' } })).rejects.toThrow(
        /platform exited with 1[\s\S]*Tributary failed to start: the warehouse engine could not open [^\n]*Syntax error \(in file metadata\/tributary\.sql\)/,
      );
      await waitFor('every process of the platform gone', () => processesOf(dataDir).length === 0, 30_000);
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
