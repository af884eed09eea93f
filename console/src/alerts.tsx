import { useState } from 'preact/hooks';
import { api, ApiFailure, fmtTime, qs } from './api';
import { DataTable, type Column } from './table';
import { ErrorBox, useInterval, useLoad } from './ui';

/** What an alert is about, linked to its page in the console where there is one. */
function Subject({ s }: { s: any }) {
  if (!s || typeof s !== 'object') return <>{String(s ?? '—')}</>;
  const parts = [];
  if (s.source_id) parts.push(<a href={`#/sources/${s.source_id}`}>{s.source_name ?? s.source_id}</a>);
  if (s.schema_id) parts.push(<a href={`#/jobs?schema_id=${s.schema_id}`}>{s.schema_name ?? s.schema_id}</a>);
  if (s.destination_id) parts.push(<a href={`#/destinations/${s.destination_id}`}>{s.destination_name ?? s.destination_id}</a>);
  if (!parts.length) return <>—</>;
  return <>{parts.flatMap((p, i) => (i ? [' / ', p] : [p]))}</>;
}

const COLUMNS: Column<any>[] = [
  { label: 'State', cell: (a) => a.state },
  { label: 'Severity', cell: (a) => <span class={`sev-${a.severity}`}>{a.severity}</span> },
  { label: 'Kind', cell: (a) => a.kind },
  { label: 'Subject', cell: (a) => <Subject s={a.subject} /> },
  { label: 'Message', cell: (a) => a.message },
  { label: 'Raised', cell: (a) => fmtTime(a.raised_at) },
  { label: 'Cleared', cell: (a) => fmtTime(a.cleared_at) },
];

/** GET /api/alerts: failing and stale syncs, CDC lag and lost slots, disabled destinations — open and cleared. */
export function AlertsPage() {
  const [state, setState] = useState('');
  const alerts = useLoad(
    () =>
      api<{ results: any[] }>('GET', `/api/alerts${qs({ state })}`).catch((err) => {
        // A platform without the alerts API: say so rather than fail.
        if (err instanceof ApiFailure && err.status === 404 && err.body?.error === 'not_found') return null;
        throw err;
      }),
    [state],
  );
  useInterval(alerts.reload, 10000);
  return (
    <section>
      <h1>Alerts</h1>
      <p class="muted">
        Each incident is raised once and cleared when it is over; a destination can subscribe to them (see the <a href="/docs">API docs</a>).
      </p>
      <label>
        State{' '}
        <select name="state" value={state} onChange={(e) => setState(e.currentTarget.value)}>
          <option value="">any</option>
          <option value="open">open</option>
          <option value="cleared">cleared</option>
        </select>
      </label>
      <ErrorBox error={alerts.error} />
      {alerts.data === null && <p>This platform has no alerts API.</p>}
      {alerts.data && <DataTable caption="Alerts" class="alerts" columns={COLUMNS} rows={alerts.data.results} rowProps={(a) => ({ class: `alert-${a.state}` })} empty="No alerts." />}
    </section>
  );
}
