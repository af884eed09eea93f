import { useState } from 'preact/hooks';
import { api, errText, fmtBytes, fmtTime, FREQUENCIES, frequenciesFor, qs } from './api';
import { DataTable, nextSort, type Column } from './table';
import { ErrorBox, LineChart, Notice, Status, useInterval, useLoad } from './ui';
import { WebhookPanel } from './wizard';

type Schema = {
  id: string;
  name: string;
  table: string;
  should_sync: boolean;
  sync_type: string | null;
  sync_frequency: string;
  status: string | null;
  last_synced_at: string | null;
  rows_synced: number | null;
  latest_error: string | null;
};
type Pending = { message: string; confirmLabel: string; run: () => Promise<void> };

const COLUMNS: { key: keyof Schema; label: string }[] = [
  { key: 'name', label: 'Table' },
  { key: 'should_sync', label: 'Enabled' },
  { key: 'sync_type', label: 'Method' },
  { key: 'sync_frequency', label: 'Frequency' },
  { key: 'status', label: 'Status' },
  { key: 'last_synced_at', label: 'Last synced' },
  { key: 'rows_synced', label: 'Rows' },
];
const CELLS: Partial<Record<keyof Schema, (r: Schema) => any>> = {
  name: (r) => (
    <>
      {r.name}
      <div class="small muted">{r.table}</div>
    </>
  ),
  should_sync: (r) => (r.should_sync ? 'yes' : 'no'),
  sync_type: (r) => r.sync_type ?? '—',
  sync_frequency: (r) => r.sync_frequency,
  status: (r) => (
    <>
      <Status value={r.status} />
      {r.latest_error && <div class="small error-text">{r.latest_error}</div>}
    </>
  ),
  last_synced_at: (r) => fmtTime(r.last_synced_at),
  rows_synced: (r) => r.rows_synced ?? '—',
};
const FREQ_ORDER = new Map(FREQUENCIES.map((f, i) => [f as string, i]));

/** Empty cells last in either direction: they are what is not known yet. */
function ordered(a: Schema, b: Schema, key: keyof Schema, dir: 1 | -1): number {
  const xn = a[key] === null || a[key] === undefined;
  const yn = b[key] === null || b[key] === undefined;
  if (xn !== yn) return xn ? 1 : -1;
  return dir * compare(a, b, key);
}

function compare(a: Schema, b: Schema, key: keyof Schema): number {
  const x = a[key];
  const y = b[key];
  if (x === y || (x === null && y === null)) return a.name.localeCompare(b.name);
  if (key === 'sync_frequency') return FREQ_ORDER.get(x as string)! - FREQ_ORDER.get(y as string)!;
  if (typeof x === 'number' && typeof y === 'number') return x - y;
  if (typeof x === 'boolean') return x ? -1 : 1;
  return String(x).localeCompare(String(y));
}

export function SourcePage({ id }: { id: string }) {
  const source = useLoad(() => api('GET', `/api/sources/${id}`), [id]);
  useInterval(source.reload, 5000);
  const s: any = source.data;
  const hasWebhooks = s?.schemas?.some((x: any) => x.sync_type === 'webhook');
  return (
    <section>
      <p>
        <a href="#/sources">← Sources</a>
      </p>
      <ErrorBox error={source.error} />
      {s && (
        <>
          <h1>
            {s.prefix} <span class="muted">({s.source_type})</span>
          </h1>
          <dl class="facts">
            <dt>Status</dt>
            <dd>
              <Status value={s.status} />
              {s.latest_error && <span class="error-text"> {s.latest_error}</span>}
            </dd>
            <dt>Last successful run</dt>
            <dd>{fmtTime(s.last_successful_run)}</dd>
            <dt>Created</dt>
            <dd>{fmtTime(s.created_at)}</dd>
          </dl>
          {s.cdc && <CdcPanel sourceId={id} cdc={s.cdc} onChange={source.reload} />}
          {hasWebhooks && <WebhookPanel sourceId={id} />}
          <SchemasTable sourceId={id} />
        </>
      )}
    </section>
  );
}

/** The slot's state and its lag over the last day (GET /api/sources/:id/cdc/lag-history), with pause / resume / resync. */
function CdcPanel({ sourceId, cdc, onChange }: { sourceId: string; cdc: any; onChange: () => void }) {
  const history = useLoad(() => api<{ results: { at: string; lag_bytes: number }[] }>('GET', `/api/sources/${sourceId}/cdc/lag-history`), [sourceId, cdc.lag_checked_at]);
  const points = (history.data?.results ?? []).map((p) => ({ t: new Date(p.at).getTime(), v: p.lag_bytes }));
  const [msg, setMsg] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const act = async (what: 'pause' | 'resume' | 'resync') => {
    setError(null);
    try {
      const r = await api('POST', `/api/sources/${sourceId}/cdc/${what}`);
      setMsg(`${what}: done${r.warnings?.length ? ' — ' + r.warnings.join('; ') : ''}`);
      onChange();
    } catch (err) {
      setError(errText(err));
    }
  };
  return (
    <section aria-labelledby="cdc-h" class="panel">
      <h2 id="cdc-h">CDC</h2>
      <dl class="facts">
        <dt>State</dt>
        <dd>
          <Status value={cdc.status} />
          {cdc.paused ? ' (paused)' : ''}
        </dd>
        <dt>Slot</dt>
        <dd>
          <code>{cdc.slot_name}</code>
        </dd>
        <dt>Lag</dt>
        <dd class={`lag lag-${cdc.lag_status}`}>
          {fmtBytes(cdc.lag_bytes)} ({cdc.lag_status}), measured {fmtTime(cdc.lag_checked_at)}
        </dd>
        <dt>Replication delay</dt>
        <dd class="delay">
          {cdc.lag_seconds === null || cdc.lag_seconds === undefined ? '—' : `${cdc.lag_seconds.toFixed(1)} s`}, for the last change, committed at the source {fmtTime(cdc.last_commit_at)}
        </dd>
        <dt>Checkpoint</dt>
        <dd>{cdc.checkpoint_lsn ?? '—'}</dd>
        <dt>Changes synced</dt>
        <dd>{cdc.changes_synced}</dd>
      </dl>
      {cdc.latest_error && <p class="error">{cdc.latest_error}</p>}
      {cdc.warnings?.map((w: string) => (
        <p class="warning">{w}</p>
      ))}
      <ErrorBox error={history.error} />
      <LineChart points={points} label="Slot lag (bytes of WAL held back), last 24 hours" unit=" B" />
      <div class="actions">
        {cdc.paused ? (
          <button type="button" onClick={() => act('resume')}>
            Resume
          </button>
        ) : (
          <button type="button" onClick={() => act('pause')}>
            Pause
          </button>
        )}
        <button type="button" onClick={() => act('resync')}>
          Resync (new slot, fresh snapshots)
        </button>
      </div>
      {msg && <Notice>{msg}</Notice>}
      <ErrorBox error={error} />
    </section>
  );
}

function SchemasTable({ sourceId }: { sourceId: string }) {
  const [filters, setFilters] = useState({ status: '', sync_type: '', frequency: '', search: '', enabled_only: false });
  const [sort, setSort] = useState<{ key: keyof Schema; dir: 1 | -1 }>({ key: 'name', dir: 1 });
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [pending, setPending] = useState<Pending | null>(null);
  const [result, setResult] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [bulkFrequency, setBulkFrequency] = useState('');
  const list = useLoad(
    () => api<{ results: Schema[] }>('GET', `/api/sources/${sourceId}/schemas${qs({ ...filters, enabled_only: filters.enabled_only || undefined })}`),
    [sourceId, JSON.stringify(filters)],
  );
  useInterval(list.reload, 5000);
  const rows = [...(list.data?.results ?? [])].sort((a, b) => ordered(a, b, sort.key, sort.dir));
  const chosen = rows.filter((r) => selected.has(r.id));
  const setFilter = (k: string, v: string | boolean) => setFilters((f) => ({ ...f, [k]: v }));
  const toggle = (id: string, on: boolean) =>
    setSelected((s) => {
      const n = new Set(s);
      if (on) n.add(id);
      else n.delete(id);
      return n;
    });

  const report = (r: any) => {
    const applied = r.applied?.map((x: any) => x.name).join(', ') || 'none';
    const skipped = r.skipped?.map((x: any) => `${x.name} (${x.reason})`).join(', ');
    setResult(`${r.action}: applied to ${applied}${skipped ? `; skipped ${skipped}` : ''}`);
  };
  async function run(fn: () => Promise<void>) {
    setError(null);
    setResult(null);
    setPending(null);
    try {
      await fn();
    } catch (err) {
      setError(errText(err));
    }
    list.reload();
  }
  const bulk = (action: string, extra: Record<string, unknown> = {}) =>
    run(async () => report(await api('POST', '/api/schemas/bulk', { action, schema_ids: chosen.map((c) => c.id), ...extra })));

  function disable() {
    const streaming = chosen.filter((c) => c.sync_type === 'cdc' || c.sync_type === 'webhook');
    if (streaming.length === 0) return bulk('disable');
    setPending({
      message: `${streaming.map((c) => c.name).join(', ')} ${streaming.length > 1 ? 'are' : 'is'} streamed (CDC or webhook): disabling stops the stream, and changes made meanwhile are picked up only by a fresh load.`,
      confirmLabel: 'Disable anyway',
      run: () => bulk('disable', { confirm: true }),
    });
  }
  const destructive = (action: string, what: string) =>
    setPending({ message: `${what} for ${chosen.map((c) => c.name).join(', ')}?`, confirmLabel: 'Yes, go ahead', run: () => bulk(action, { confirm: true }) });
  const syncAll = () =>
    setPending({
      message: 'Sync every enabled table of this source now? Tables already syncing are skipped.',
      confirmLabel: 'Sync all enabled',
      run: () =>
        run(async () => {
          const r = await api('POST', `/api/sources/${sourceId}/sync-all`, { confirm: true });
          setResult(`sync all: started ${r.started.map((x: any) => x.name).join(', ') || 'none'}${r.skipped.length ? '; skipped ' + r.skipped.map((x: any) => `${x.name} (${x.reason})`).join(', ') : ''}`);
        }),
    });
  const pull = () =>
    run(async () => {
      const r = await api('POST', `/api/sources/${sourceId}/refresh-schemas`);
      setResult(`pull new schemas: ${r.added.length ? 'added ' + r.added.map((x: any) => x.name).join(', ') : 'nothing new'}${r.missing_at_source.length ? '; gone at the source: ' + r.missing_at_source.join(', ') : ''}`);
    });
  // Frequencies every selected schema allows (1min only when all are CDC).
  const allowed = frequenciesFor(chosen.length && chosen.every((c) => c.sync_type === 'cdc') ? 'cdc' : null);

  return (
    <section aria-labelledby="schemas-h">
      <div class="title-row">
        <h2 id="schemas-h">Schemas</h2>
        <div class="actions">
          <button type="button" onClick={pull}>
            Pull new schemas
          </button>
          <button type="button" onClick={syncAll}>
            Sync all enabled
          </button>
        </div>
      </div>
      <form class="filters" role="search" aria-label="Filter schemas" onSubmit={(e) => e.preventDefault()}>
        <label>
          Name <input type="search" name="search" value={filters.search} onInput={(e) => setFilter('search', e.currentTarget.value)} />
        </label>
        <label>
          Status
          <select name="status" value={filters.status} onChange={(e) => setFilter('status', e.currentTarget.value)}>
            <option value="">any</option>
            {['Running', 'Completed', 'Failed', 'Paused', 'not set up'].map((v) => (
              <option value={v}>{v}</option>
            ))}
          </select>
        </label>
        <label>
          Method
          <select name="sync_type" value={filters.sync_type} onChange={(e) => setFilter('sync_type', e.currentTarget.value)}>
            <option value="">any</option>
            {['full_refresh', 'incremental', 'append', 'cdc', 'webhook', 'none'].map((v) => (
              <option value={v}>{v}</option>
            ))}
          </select>
        </label>
        <label>
          Frequency
          <select name="frequency" value={filters.frequency} onChange={(e) => setFilter('frequency', e.currentTarget.value)}>
            <option value="">any</option>
            {FREQUENCIES.map((v) => (
              <option value={v}>{v}</option>
            ))}
          </select>
        </label>
        <label class="inline">
          <input type="checkbox" name="enabled_only" checked={filters.enabled_only} onChange={(e) => setFilter('enabled_only', e.currentTarget.checked)} /> Enabled only
        </label>
      </form>

      <div class="bulk" role="group" aria-label="Bulk actions on the selected schemas">
        <span>{chosen.length} selected</span>
        <button type="button" disabled={!chosen.length} onClick={disable}>
          Disable
        </button>
        <button type="button" disabled={!chosen.length} onClick={() => bulk('sync_now')}>
          Sync now
        </button>
        <label>
          Frequency
          <select value={bulkFrequency} onChange={(e) => setBulkFrequency(e.currentTarget.value)}>
            <option value="">choose…</option>
            {allowed.map((f) => (
              <option value={f}>{f}</option>
            ))}
          </select>
        </label>
        <button type="button" disabled={!chosen.length || !bulkFrequency} onClick={() => bulk('set_frequency', { frequency: bulkFrequency })}>
          Set frequency
        </button>
        <button type="button" disabled={!chosen.length} onClick={() => destructive('delete_and_resync', 'Drop the warehouse tables and import them again')}>
          Delete and resync
        </button>
        <button type="button" class="danger" disabled={!chosen.length} onClick={() => destructive('delete_tables', 'Drop the warehouse tables (the schemas are disabled)')}>
          Delete tables
        </button>
      </div>
      {pending && (
        <div class="confirm" role="alertdialog" aria-labelledby="confirm-msg">
          <p id="confirm-msg">{pending.message}</p>
          <button type="button" onClick={pending.run} autofocus>
            {pending.confirmLabel}
          </button>
          <button type="button" onClick={() => setPending(null)}>
            Cancel
          </button>
        </div>
      )}
      {result && <Notice>{result}</Notice>}
      <ErrorBox error={error ?? list.error} />

      <DataTable
        caption={`Schemas, sorted by ${COLUMNS.find((c) => c.key === sort.key)!.label.toLowerCase()}`}
        class="schemas"
        rows={rows}
        rowProps={(r) => ({ 'data-schema': r.name })}
        sort={sort}
        onSort={(key) => setSort((s) => nextSort(s, key) as typeof sort)}
        columns={[
          {
            label: 'Select',
            header: (
              <input
                type="checkbox"
                aria-label="Select all shown"
                checked={rows.length > 0 && chosen.length === rows.length}
                onChange={(e) => setSelected(e.currentTarget.checked ? new Set(rows.map((r) => r.id)) : new Set())}
              />
            ),
            cell: (r) => <input type="checkbox" aria-label={`Select ${r.name}`} checked={selected.has(r.id)} onChange={(e) => toggle(r.id, e.currentTarget.checked)} />,
          },
          ...COLUMNS.map((c): Column<Schema> => ({ label: c.label, sortKey: c.key, rowHeader: c.key === 'name', class: c.key === 'rows_synced' ? 'num' : undefined, cell: CELLS[c.key]! })),
          { label: 'Jobs', cell: (r) => <a href={`#/jobs?schema_id=${r.id}`}>History</a> },
        ]}
      />
      {list.data && rows.length === 0 && <p>No schema matches the filters.</p>}
    </section>
  );
}
