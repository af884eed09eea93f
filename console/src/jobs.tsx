import { useState } from 'preact/hooks';
import { api, fmtTime, qs } from './api';
import { ErrorBox, Status, useInterval, useLoad } from './ui';

/** Where a run opens in the Temporal UI (the URL comes from GET /api/platform-info). */
export function temporalRunUrl(info: any, workflowId: string, runId?: string | null) {
  if (!info?.temporal_ui_url) return null;
  const base = `${info.temporal_ui_url.replace(/\/$/, '')}/namespaces/${encodeURIComponent(info.temporal_namespace)}/workflows/${encodeURIComponent(workflowId)}`;
  return runId ? `${base}/${encodeURIComponent(runId)}/history` : base;
}

export function JobsPage({ schemaId, sourceId }: { schemaId?: string; sourceId?: string }) {
  const [status, setStatus] = useState('');
  const info = useLoad(() => api('GET', '/api/platform-info'));
  const jobs = useLoad(() => api<{ results: any[] }>('GET', `/api/jobs${qs({ schema_id: schemaId, source_id: sourceId, status, limit: 100 })}`), [schemaId, sourceId, status]);
  useInterval(jobs.reload, 5000);
  return (
    <section>
      <h1>Jobs</h1>
      <p class="muted">{schemaId ? 'Runs of one schema, newest first.' : 'Every run, newest first.'} Open a run in the Temporal UI to see each step.</p>
      <label>
        Status{' '}
        <select name="status" value={status} onChange={(e) => setStatus(e.currentTarget.value)}>
          <option value="">any</option>
          {['Running', 'Completed', 'Failed'].map((s) => (
            <option value={s}>{s}</option>
          ))}
        </select>
      </label>
      <ErrorBox error={jobs.error} />
      {jobs.data && jobs.data.results.length === 0 && <p>No runs yet.</p>}
      {jobs.data && jobs.data.results.length > 0 && (
        <div class="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">Started</th>
                <th scope="col">Status</th>
                <th scope="col">Rows</th>
                <th scope="col">Duration</th>
                <th scope="col">Error</th>
                <th scope="col">Run</th>
              </tr>
            </thead>
            <tbody>
              {jobs.data.results.map((j) => {
                const url = j.workflow_id ? temporalRunUrl(info.data, j.workflow_id, j.workflow_run_id) : null;
                return (
                  <tr>
                    <td>{fmtTime(j.started_at)}</td>
                    <td>
                      <Status value={j.status} />
                    </td>
                    <td class="num">{j.rows_synced}</td>
                    <td class="num">{j.duration_seconds === null ? '—' : `${j.duration_seconds.toFixed(1)} s`}</td>
                    <td class="error-text">{j.latest_error ?? ''}</td>
                    <td>
                      {url ? (
                        <a href={url} target="_blank" rel="noopener">
                          Temporal UI
                        </a>
                      ) : (
                        <code>{j.workflow_id ?? '—'}</code>
                      )}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
