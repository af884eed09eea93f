import { useState } from 'preact/hooks';
import { api, errText } from './api';
import { ErrorBox } from './ui';

export function QueryPage() {
  const [sql, setSql] = useState('SELECT name, total_rows FROM system.tables WHERE database = currentDatabase() ORDER BY name');
  const [result, setResult] = useState<any>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  async function run(e?: Event) {
    e?.preventDefault();
    setBusy(true);
    setError(null);
    try {
      setResult(await api('POST', '/api/query', { sql }));
    } catch (err) {
      setResult(null);
      setError(errText(err));
    } finally {
      setBusy(false);
    }
  }
  return (
    <section>
      <h1>Query</h1>
      <form onSubmit={run}>
        <label for="sql">SQL (read-only, over the warehouse)</label>
        <textarea
          id="sql"
          name="sql"
          rows={6}
          spellcheck={false}
          value={sql}
          onInput={(e) => setSql(e.currentTarget.value)}
          onKeyDown={(e) => {
            if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) run(e);
          }}
        />
        <button type="submit" disabled={busy}>
          Run <span class="muted small">(Ctrl+Enter)</span>
        </button>
      </form>
      <ErrorBox error={error} />
      {result && (
        <>
          <p role="status">{result.row_count} rows</p>
          <div class="table-wrap">
            <table class="results">
              <thead>
                <tr>
                  {result.columns.map((c: any) => (
                    <th scope="col" title={c.type}>
                      {c.name}
                    </th>
                  ))}
                </tr>
              </thead>
              <tbody>
                {result.rows.map((r: any) => (
                  <tr>
                    {result.columns.map((c: any) => (
                      <td>{r[c.name] === null ? <span class="muted">NULL</span> : typeof r[c.name] === 'object' ? JSON.stringify(r[c.name]) : String(r[c.name])}</td>
                    ))}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      )}
    </section>
  );
}
