import { api, ApiFailure, fmtTime } from './api';
import { ErrorBox, useInterval, useLoad } from './ui';

/** GET /api/alerts: raised and cleared alerts (failing, stale, CDC lag, disabled destinations). */
export function AlertsPage() {
  const alerts = useLoad(() =>
    api<{ results: any[] }>('GET', '/api/alerts').catch((err) => {
      if (err instanceof ApiFailure && err.status === 404) return null;
      throw err;
    }),
  );
  useInterval(alerts.reload, 10000);
  return (
    <section>
      <h1>Alerts</h1>
      <p class="muted">
        Alerts are also events a destination can subscribe to; see the <a href="/docs">API docs</a>.
      </p>
      <ErrorBox error={alerts.error} />
      {alerts.data === null && <p>This platform has no alerts API.</p>}
      {alerts.data && alerts.data.results.length === 0 && <p>No alerts.</p>}
      {alerts.data && alerts.data.results.length > 0 && (
        <div class="table-wrap">
          <table>
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
                  <td>{typeof a.subject === 'object' ? JSON.stringify(a.subject) : a.subject}</td>
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
