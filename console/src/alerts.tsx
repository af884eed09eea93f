import { useState } from 'preact/hooks';
import { api, ApiFailure, fmtTime, qs } from './api';
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
      {alerts.data && alerts.data.results.length === 0 && <p>No alerts.</p>}
      {alerts.data && alerts.data.results.length > 0 && (
        <div class="table-wrap">
          <table class="alerts">
            <thead>
              <tr>
                <th scope="col">State</th>
                <th scope="col">Severity</th>
                <th scope="col">Kind</th>
                <th scope="col">Subject</th>
                <th scope="col">Message</th>
                <th scope="col">Raised</th>
                <th scope="col">Cleared</th>
              </tr>
            </thead>
            <tbody>
              {alerts.data.results.map((a) => (
                <tr class={`alert-${a.state}`}>
                  <td>{a.state}</td>
                  <td class={`sev-${a.severity}`}>{a.severity}</td>
                  <td>{a.kind}</td>
                  <td>
                    <Subject s={a.subject} />
                  </td>
                  <td>{a.message}</td>
                  <td>{fmtTime(a.raised_at)}</td>
                  <td>{fmtTime(a.cleared_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
