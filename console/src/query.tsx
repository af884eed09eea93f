import { useState } from 'preact/hooks';
import { api, errText } from './api';
import { DataTable } from './table';
import { ErrorBox } from './ui';

const cellText = (v: unknown) => (v === null ? <span class="muted">NULL</span> : typeof v === 'object' ? JSON.stringify(v) : String(v));

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
          <DataTable
            caption="Query results"
            class="results"
            columns={result.columns.map((c: any) => ({ label: c.name, title: c.type, cell: (r: any) => cellText(r[c.name]) }))}
            rows={result.rows}
          />
        </>
      )}
    </section>
  );
}
