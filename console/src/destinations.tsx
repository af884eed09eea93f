import { useState } from 'preact/hooks';
import { api, errText, fmtTime } from './api';
import { DataTable, type Column } from './table';
import { ErrorBox, LineChart, Status, useInterval, useLoad } from './ui';

const LIST_COLUMNS: Column<any>[] = [
  { label: 'Name', cell: (d) => <a href={`#/destinations/${d.id}`}>{d.name}</a> },
  { label: 'URL', cell: (d) => <code>{d.url}</code> },
  { label: 'Enabled', cell: (d) => (d.enabled ? 'yes' : 'no') },
  { label: 'Health', cell: (d) => <Status value={d.health_state} /> },
  { label: 'Changes waiting', class: 'num', cell: (d) => d.lag?.changes_after_checkpoint ?? '—' },
];

const LOG_COLUMNS: Column<any>[] = [
  { label: 'Time', cell: (l) => fmtTime(l.time) },
  { label: 'Level', cell: (l) => l.level },
  { label: 'Message', cell: (l) => l.message },
  { label: 'Status', cell: (l) => l.status ?? '—' },
  { label: 'Duration', class: 'num', cell: (l) => (l.duration_ms === null ? '—' : `${l.duration_ms} ms`) },
  { label: 'Error', class: 'error-text', cell: (l) => l.error ?? '' },
];

export function DestinationsPage() {
  const list = useLoad(() => api<{ results: any[] }>('GET', '/api/destinations'));
  useInterval(list.reload, 10000);
  return (
    <section>
      <h1>Destinations</h1>
      <p class="muted">
        Webhook destinations push every change to an HTTP endpoint. The form makes a plain one; headers, body templates and filter expressions
        are set with <code>POST /api/destinations</code> (see the <a href="/docs">API docs</a>).
      </p>
      <NewDestination />
      <ErrorBox error={list.error} />
      {list.data && <DataTable caption="Destinations" columns={LIST_COLUMNS} rows={list.data.results} empty="No destinations." />}
    </section>
  );
}

export function DestinationPage({ id }: { id: string }) {
  const [interval, setInterval] = useState('1h');
  const d = useLoad(() => api('GET', `/api/destinations/${id}`), [id]);
  const metrics = useLoad(() => api('GET', `/api/destinations/${id}/metrics?interval=${interval}`), [id, interval]);
  const logs = useLoad(() => api<{ results: any[] }>('GET', `/api/destinations/${id}/logs?limit=50`), [id]);
  useInterval(() => (metrics.reload(), logs.reload()), 10000);
  const m: any = metrics.data;
  const series = (key: string) => (m?.buckets ?? []).map((b: any) => ({ t: new Date(b.time).getTime(), v: b[key] }));
  const dest: any = d.data;
  return (
    <section>
      <p>
        <a href="#/destinations">← Destinations</a>
      </p>
      <ErrorBox error={d.error} />
      {dest && (
        <>
          <h1>{dest.name}</h1>
          <dl class="facts">
            <dt>URL</dt>
            <dd>
              <code>
                {dest.method} {dest.url}
              </code>
            </dd>
            <dt>Health</dt>
            <dd>
              <Status value={dest.health_state} />
            </dd>
            {m && (
              <>
                <dt>Lag</dt>
                <dd>
                  {m.lag.changes} changes waiting{m.lag.seconds !== null ? `, oldest ${Math.round(m.lag.seconds)} s old` : ''}
                </dd>
              </>
            )}
          </dl>
        </>
      )}
      <section aria-labelledby="metrics-h" class="panel">
        <h2 id="metrics-h">Deliveries</h2>
        <label>
          Bucket{' '}
          <select value={interval} onChange={(e) => setInterval(e.currentTarget.value)}>
            {['1m', '5m', '1h'].map((i) => (
              <option value={i}>{i}</option>
            ))}
          </select>
        </label>
        <ErrorBox error={metrics.error} />
        {m && (
          <>
            <p>
              Totals: {Object.entries(m.totals).map(([k, v]) => `${k} ${v}`).join(' · ')}
            </p>
            <div class="charts">
              <LineChart points={series('succeeded')} label="Succeeded per bucket" />
              <LineChart points={series('failed')} label="Failed per bucket" />
            </div>
          </>
        )}
      </section>
      <TestPanel id={id} />
      <section aria-labelledby="logs-h">
        <h2 id="logs-h">Log</h2>
        <ErrorBox error={logs.error} />
        {logs.data && <DataTable caption="Delivery log, newest first" columns={LOG_COLUMNS} rows={logs.data.results} empty="Nothing logged yet." />}
      </section>
    </section>
  );
}

function TestPanel({ id }: { id: string }) {
  const [table, setTable] = useState('');
  const [row, setRow] = useState('');
  const [result, setResult] = useState<any>(null);
  const [error, setError] = useState<string | null>(null);
  async function send(e: Event) {
    e.preventDefault();
    setError(null);
    setResult(null);
    try {
      const body: Record<string, unknown> = {};
      if (table.trim()) body.table = table.trim();
      if (row.trim()) body.row = JSON.parse(row);
      setResult(await api('POST', `/api/destinations/${id}/test`, body));
    } catch (err) {
      setError(err instanceof SyntaxError ? `row: ${err.message}` : errText(err));
    }
  }
  return (
    <section aria-labelledby="test-h" class="panel">
      <h2 id="test-h">Test send</h2>
      <form onSubmit={send}>
        <label for="test-table">Table (default: the first table of the filters)</label>
        <input id="test-table" value={table} onInput={(e) => setTable(e.currentTarget.value)} />
        <label for="test-row">Row as JSON (optional: instead of the latest change)</label>
        <textarea id="test-row" rows={3} value={row} onInput={(e) => setRow(e.currentTarget.value)} />
        <button type="submit">Send one test request</button>
      </form>
      <ErrorBox error={error} />
      {result && (
        <div role="status">
          <p>
            {result.error ? `Failed: ${result.error}` : `HTTP ${result.response?.status}`} in {Math.round(result.duration_ms)} ms; filters{' '}
            {result.matches_filters === null ? 'not evaluated' : result.matches_filters ? 'match' : 'do not match'}.
          </p>
          <h3>Request</h3>
          <pre>
            {result.request.method} {result.request.url}
            {'\n'}
            {Object.entries(result.request.headers).map(([k, v]) => `${k}: ${v}\n`)}
            {'\n'}
            {result.request.body}
          </pre>
          {result.response && (
            <>
              <h3>Response</h3>
              <pre>{result.response.body}</pre>
            </>
          )}
        </div>
      )}
    </section>
  );
}

/** The common case (a name, a URL, optionally some tables) through POST /api/destinations; the API's message verbatim on error. */
function NewDestination() {
  const [name, setName] = useState('');
  const [url, setUrl] = useState('');
  const [tables, setTables] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  async function create(e: Event) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const names = tables.split(',').map((t) => t.trim()).filter(Boolean);
      const created = await api('POST', '/api/destinations', { type: 'webhook', name: name.trim(), url: url.trim(), ...(names.length ? { filters: { tables: names } } : {}) });
      location.hash = `#/destinations/${created.id}`;
    } catch (err) {
      setError(errText(err));
    } finally {
      setBusy(false);
    }
  }
  return (
    <details class="panel">
      <summary>New destination</summary>
      <form onSubmit={create}>
        <label for="dest-name">Name</label>
        <input id="dest-name" required value={name} onInput={(e) => setName(e.currentTarget.value)} />
        <label for="dest-url">Endpoint URL</label>
        <input id="dest-url" type="url" required placeholder="https://…" value={url} onInput={(e) => setUrl(e.currentTarget.value)} />
        <label for="dest-tables">Tables (warehouse names, comma-separated; empty: every table)</label>
        <input id="dest-tables" value={tables} onInput={(e) => setTables(e.currentTarget.value)} />
        <button type="submit" disabled={busy}>
          Create destination
        </button>
      </form>
      <ErrorBox error={error} />
    </details>
  );
}
