import { api, fmtBytes, fmtTime } from './api';
import { ErrorBox, Status, useInterval, useLoad } from './ui';

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
      {data && data.results.length === 0 && <p>No sources yet. Create one with “New source”.</p>}
      {data && data.results.length > 0 && (
        <div class="table-wrap">
          <table>
            <caption class="sr-only">Sources</caption>
            <thead>
              <tr>
                <th scope="col">Prefix</th>
                <th scope="col">Type</th>
                <th scope="col">Status</th>
                <th scope="col">Last successful run</th>
                <th scope="col">Schemas (enabled / total)</th>
                <th scope="col">Running</th>
                <th scope="col">Failed</th>
                <th scope="col">CDC lag</th>
              </tr>
            </thead>
            <tbody>
              {data.results.map((s) => (
                <tr>
                  <td>
                    <a href={`#/sources/${s.id}`}>{s.prefix}</a>
                  </td>
                  <td>{s.source_type}</td>
                  <td>
                    <Status value={s.status} />
                    {s.latest_error && <div class="small error-text">{s.latest_error}</div>}
                  </td>
                  <td>{fmtTime(s.last_successful_run)}</td>
                  <td>
                    {s.schema_counts?.enabled ?? '—'} / {s.schema_counts?.total ?? '—'}
                  </td>
                  <td>{s.schema_counts?.running ?? '—'}</td>
                  <td>{s.schema_counts?.failed ?? '—'}</td>
                  <td>{s.cdc ? <span class={`lag lag-${s.cdc.lag_status}`}>{fmtBytes(s.cdc.lag_bytes)} ({s.cdc.lag_status})</span> : '—'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
