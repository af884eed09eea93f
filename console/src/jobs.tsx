import { useState } from 'preact/hooks';
import { api, fmtTime, qs } from './api';
import { DataTable, type Column } from './table';
import { ErrorBox, Status, useInterval, useLoad } from './ui';

const columns = (info: any): Column<any>[] => [
  { label: 'Started', cell: (j) => fmtTime(j.started_at) },
  { label: 'Status', cell: (j) => <Status value={j.status} /> },
  { label: 'Rows', class: 'num', cell: (j) => j.rows_synced },
  { label: 'Duration', class: 'num', cell: (j) => (j.duration_seconds === null ? '—' : `${j.duration_seconds.toFixed(1)} s`) },
  { label: 'Error', class: 'error-text', cell: (j) => j.latest_error ?? '' },
  {
    label: 'Run',
    cell: (j) => {
      const url = j.workflow_id ? temporalRunUrl(info, j.workflow_id, j.workflow_run_id) : null;
      return url ? (
        <a href={url} target="_blank" rel="noopener">
          Temporal UI
        </a>
      ) : (
        <code>{j.workflow_id ?? '—'}</code>
      );
    },
  },
];

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
      {jobs.data && <DataTable caption="Jobs" columns={columns(info.data)} rows={jobs.data.results} empty="No runs yet." />}
    </section>
  );
}
