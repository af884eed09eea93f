import { api, fmtBytes, fmtTime } from './api';
import { DataTable, type Column } from './table';
import { ErrorBox, Status, useInterval, useLoad } from './ui';

const COLUMNS: Column<any>[] = [
  { label: 'Prefix', cell: (s) => <a href={`#/sources/${s.id}`}>{s.prefix}</a> },
  { label: 'Type', cell: (s) => s.source_type },
  {
    label: 'Status',
    cell: (s) => (
      <>
        <Status value={s.status} />
        {s.latest_error && <div class="small error-text">{s.latest_error}</div>}
      </>
    ),
  },
  { label: 'Last successful run', cell: (s) => fmtTime(s.last_successful_run) },
  { label: 'Schemas (enabled / total)', cell: (s) => `${s.schema_counts?.enabled ?? '—'} / ${s.schema_counts?.total ?? '—'}` },
  { label: 'Running', cell: (s) => s.schema_counts?.running ?? '—' },
  { label: 'Failed', cell: (s) => s.schema_counts?.failed ?? '—' },
  { label: 'CDC lag', cell: (s) => (s.cdc ? <span class={`lag lag-${s.cdc.lag_status}`}>{fmtBytes(s.cdc.lag_bytes)} ({s.cdc.lag_status})</span> : '—') },
];

export function SourcesPage() {
  const { data, error, reload } = useLoad(() => api<{ results: any[] }>('GET', '/api/sources'));
  useInterval(reload, 5000);
  return (
    <section>
      <div class="title-row">
        <h1>Sources</h1>
        <a class="button" href="#/sources/new">
          New source
        </a>
      </div>
      <ErrorBox error={error} />
      {data && <DataTable caption="Sources" columns={COLUMNS} rows={data.results} empty="No sources yet. Create one with “New source”." />}
    </section>
  );
}
