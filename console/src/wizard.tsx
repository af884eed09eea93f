import { useState } from 'preact/hooks';
import { api, errText, frequenciesFor } from './api';
import { DataTable } from './table';
import { ErrorBox, Notice, useLoad } from './ui';

type Table = {
  table: string;
  rows: number | null;
  incremental_available: boolean;
  append_available: boolean;
  cdc_available: boolean | null;
  supports_webhooks: boolean;
  incremental_fields: { field: string; type: string; label: string; nullable: boolean }[];
  detected_primary_keys: string[];
  available_columns: { field: string; type: string; nullable: boolean }[];
};
type Choice = { should_sync: boolean; sync_type: string; incremental_field: string; primary_key: string; sync_frequency: string };

const METHOD_LABELS: Record<string, string> = { full_refresh: 'Full refresh', incremental: 'Incremental', append: 'Append', cdc: 'CDC', webhook: 'Webhook' };
/** Only the methods the table offers, as db-schema says. */
const methodsOf = (t: Table) =>
  ['full_refresh', t.incremental_available && 'incremental', t.append_available && 'append', t.cdc_available === true && 'cdc', t.supports_webhooks && 'webhook'].filter(Boolean) as string[];
const slug = (s: string) => s.toLowerCase().replace(/[^a-z0-9]+/g, '_').replace(/^_+|_+$/g, '');

/** The cursor of an incremental or append table, warning when it is nullable (such rows are skipped). */
function CursorCell({ t, c, choose }: { t: Table; c: Choice; choose: (table: string, patch: Partial<Choice>) => void }) {
  if (c.sync_type !== 'incremental' && c.sync_type !== 'append') return <span class="muted">—</span>;
  const cursor = t.incremental_fields.find((f) => f.field === c.incremental_field);
  return (
    <>
      <label for={`t-${t.table}-cursor`} class="sr-only">
        Cursor of {t.table}
      </label>
      <select id={`t-${t.table}-cursor`} value={c.incremental_field} disabled={!c.should_sync} onChange={(e) => choose(t.table, { incremental_field: e.currentTarget.value })}>
        {t.incremental_fields.map((f) => (
          <option value={f.field}>
            {f.label} ({f.type}
            {f.nullable ? ', nullable' : ''})
          </option>
        ))}
      </select>
      {c.should_sync && cursor?.nullable && (
        <p class="warning small" role="status">
          {cursor.field} is nullable: rows where it is null are skipped.
        </p>
      )}
    </>
  );
}

/** Seed 001's flow as one form: type → connection (checked by db-schema) → tables → prefix → create. */
export function NewSourcePage() {
  const types = useLoad(() => api<Record<string, any>>('GET', '/api/source-types'));
  const sources = useLoad(() => api<{ results: { prefix: string }[] }>('GET', '/api/sources'));
  const [type, setType] = useState('');
  const [fields, setFields] = useState<Record<string, string | boolean>>({});
  const [tables, setTables] = useState<Table[] | null>(null);
  const [choices, setChoices] = useState<Record<string, Choice>>({});
  const [prefix, setPrefix] = useState<string | null>(null);
  const [checkError, setCheckError] = useState<string | null>(null);
  const [createError, setCreateError] = useState<any>(null);
  const [busy, setBusy] = useState(false);
  const [created, setCreated] = useState<any>(null);

  const spec = type ? types.data?.[type] : undefined;
  const defaultPrefix = slug(type);
  const effectivePrefix = prefix ?? defaultPrefix;
  const taken = !!sources.data?.results.some((s) => s.prefix === effectivePrefix);

  function pickType(t: string) {
    setType(t);
    setFields({});
    setTables(null);
    setPrefix(null);
    setCheckError(null);
  }

  async function check(e: Event) {
    e.preventDefault();
    setBusy(true);
    setCheckError(null);
    setTables(null);
    try {
      const found = await api<Table[]>('POST', '/api/sources/db-schema', { source_type: type, ...fields });
      setTables(found);
      setChoices(
        Object.fromEntries(
          found.map((t) => [
            t.table,
            { should_sync: false, sync_type: 'full_refresh', incremental_field: t.incremental_fields[0]?.field ?? '', primary_key: t.detected_primary_keys.join(', '), sync_frequency: '6hour' },
          ]),
        ),
      );
    } catch (err) {
      // db-schema's message is the source's own words: shown as it is.
      setCheckError(errText(err));
    } finally {
      setBusy(false);
    }
  }

  const choose = (table: string, patch: Partial<Choice>) =>
    setChoices((c) => {
      const next = { ...c[table], ...patch };
      if (next.sync_frequency === '1min' && next.sync_type !== 'cdc') next.sync_frequency = '5min';
      return { ...c, [table]: next };
    });

  async function create(e: Event) {
    e.preventDefault();
    if (!tables) return;
    setBusy(true);
    setCreateError(null);
    const schemas = tables.map((t) => {
      const c = choices[t.table];
      if (!c.should_sync) return { name: t.table, should_sync: false };
      const cursor = t.incremental_fields.find((f) => f.field === c.incremental_field);
      const pk = c.primary_key.split(',').map((s) => s.trim()).filter(Boolean);
      return {
        name: t.table,
        should_sync: true,
        sync_type: c.sync_type,
        sync_frequency: c.sync_frequency,
        ...(c.sync_type === 'incremental' || c.sync_type === 'append' ? { incremental_field: cursor?.field, incremental_field_type: cursor?.type } : {}),
        ...(pk.length && pk.join(',') !== t.detected_primary_keys.join(',') ? { primary_key_columns: pk } : {}),
        ...(c.sync_type === 'cdc' && pk.length ? { primary_key_columns: pk } : {}),
      };
    });
    try {
      const body = { source_type: type, ...(prefix !== null ? { prefix } : {}), payload: { ...fields, schemas } };
      const source = await api('POST', '/api/sources', body);
      setCreated(source);
    } catch (err: any) {
      setCreateError(err?.body ?? { message: errText(err) });
    } finally {
      setBusy(false);
    }
  }

  if (created) return <Created source={created} />;

  return (
    <section>
      <h1>New source</h1>
      <ErrorBox error={types.error} />
      <form onSubmit={check} aria-labelledby="step1">
        <h2 id="step1">1. Source and connection</h2>
        <label for="source-type">Source type</label>
        <select id="source-type" value={type} onChange={(e) => pickType(e.currentTarget.value)} required>
          <option value="">Choose…</option>
          {Object.values(types.data ?? {}).map((t: any) => (
            <option value={t.name}>
              {t.label}
              {t.unreleasedSource ? ' (alpha)' : ''}
            </option>
          ))}
        </select>
        {spec && <p class="muted">{spec.caption}</p>}
        {spec?.fields.map((f: any) => (
          <Field field={f} value={fields[f.name]} onChange={(v) => setFields((x) => ({ ...x, [f.name]: v }))} />
        ))}
        {spec && (
          <button type="submit" disabled={busy}>
            Check connection and list tables
          </button>
        )}
        <ErrorBox error={checkError} />
      </form>

      {tables && (
        <form onSubmit={create} aria-labelledby="step2">
          <h2 id="step2">2. Tables</h2>
          {tables.length === 0 && <p>The source has no tables.</p>}
          <DataTable
            caption="Tables of the source: what to sync and how"
            class="choices"
            rows={tables}
            rowProps={(t) => ({ 'data-table': t.table })}
            columns={[
              {
                label: 'Sync',
                cell: (t) => (
                  <>
                    <input type="checkbox" id={`t-${t.table}-sync`} checked={choices[t.table].should_sync} onChange={(e) => choose(t.table, { should_sync: e.currentTarget.checked })} />
                    <label for={`t-${t.table}-sync`} class="sr-only">
                      Sync {t.table}
                    </label>
                  </>
                ),
              },
              {
                label: 'Table',
                rowHeader: true,
                cell: (t) => (
                  <>
                    {t.table}
                    <div class="small muted">{t.rows === null ? '' : `${t.rows} rows`}</div>
                  </>
                ),
              },
              {
                label: 'Method',
                cell: (t) => (
                  <>
                    <label for={`t-${t.table}-method`} class="sr-only">
                      Sync method of {t.table}
                    </label>
                    <select id={`t-${t.table}-method`} value={choices[t.table].sync_type} disabled={!choices[t.table].should_sync} onChange={(e) => choose(t.table, { sync_type: e.currentTarget.value })}>
                      {methodsOf(t).map((m) => (
                        <option value={m}>{METHOD_LABELS[m]}</option>
                      ))}
                    </select>
                  </>
                ),
              },
              { label: 'Cursor', cell: (t) => <CursorCell t={t} c={choices[t.table]} choose={choose} /> },
              {
                label: 'Primary key',
                cell: (t) => (
                  <>
                    <label for={`t-${t.table}-pk`} class="sr-only">
                      Primary key of {t.table}
                    </label>
                    <input
                      id={`t-${t.table}-pk`}
                      value={choices[t.table].primary_key}
                      disabled={!choices[t.table].should_sync}
                      placeholder={t.available_columns.map((x) => x.field).slice(0, 3).join(', ')}
                      onInput={(e) => choose(t.table, { primary_key: e.currentTarget.value })}
                    />
                  </>
                ),
              },
              {
                label: 'Frequency',
                cell: (t) => (
                  <>
                    <label for={`t-${t.table}-freq`} class="sr-only">
                      Frequency of {t.table}
                    </label>
                    <select id={`t-${t.table}-freq`} value={choices[t.table].sync_frequency} disabled={!choices[t.table].should_sync} onChange={(e) => choose(t.table, { sync_frequency: e.currentTarget.value })}>
                      {frequenciesFor(choices[t.table].sync_type).map((f) => (
                        <option value={f}>{f}</option>
                      ))}
                    </select>
                  </>
                ),
              },
            ]}
          />
          <p class="muted small">A 1-minute frequency is offered for CDC tables only.</p>

          <h2>3. Prefix</h2>
          <label for="prefix">Prefix of the warehouse tables</label>
          <input id="prefix" value={effectivePrefix} aria-describedby="prefix-help" onInput={(e) => setPrefix(e.currentTarget.value)} />
          <p id="prefix-help" class={taken ? 'warning' : 'muted'} role="status">
            {taken ? `The prefix "${effectivePrefix}" is taken by another source.` : `Tables will be named ${effectivePrefix || '…'}_<table>. Default: ${defaultPrefix}.`}
          </p>
          <button type="submit" disabled={busy || taken}>
            Create source
          </button>
          {createError && (
            <div class="error" role="alert">
              <p>{createError.message}</p>
              {createError.details?.length > 1 && (
                <ul>
                  {createError.details.map((d: any) => (
                    <li>
                      <code>{d.field}</code>: {d.message}
                    </li>
                  ))}
                </ul>
              )}
            </div>
          )}
        </form>
      )}
    </section>
  );
}

function Field({ field, value, onChange }: { field: any; value: string | boolean | undefined; onChange: (v: string | boolean) => void }) {
  const id = `field-${field.name}`;
  const label = (
    <label for={id}>
      {field.label}
      {field.required ? ' *' : ''}
    </label>
  );
  if (field.type === 'switch')
    return (
      <div class="switch">
        <input type="checkbox" id={id} role="switch" checked={value === true} onChange={(e) => onChange(e.currentTarget.checked)} />
        {label}
      </div>
    );
  if (field.type === 'select')
    return (
      <>
        {label}
        <select id={id} name={field.name} value={String(value ?? '')} required={field.required} onChange={(e) => onChange(e.currentTarget.value)}>
          <option value="">{field.required ? 'Choose…' : '(default)'}</option>
          {field.options?.map((o: any) => (
            <option value={o.value}>{o.label}</option>
          ))}
        </select>
      </>
    );
  return (
    <>
      {label}
      <input
        id={id}
        name={field.name}
        type={(field.type === 'password' ? 'password' : 'text') as 'text'}
        autocomplete={field.type === 'password' ? 'new-password' : 'off'}
        required={field.required}
        placeholder={field.placeholder}
        value={String(value ?? '')}
        onInput={(e) => onChange(e.currentTarget.value)}
      />
    </>
  );
}

/** After create: warnings, and for webhook tables the registration with both sides' status. */
function Created({ source }: { source: any }) {
  const webhookTables = (source.schemas ?? []).filter((s: any) => s.should_sync && s.sync_type === 'webhook');
  return (
    <section>
      <h1>Source “{source.prefix}” created</h1>
      <Notice>Enabled tables have their schedules and their first syncs are starting.</Notice>
      {source.warnings?.length > 0 && (
        <ul class="warnings">
          {source.warnings.map((w: string) => (
            <li class="warning">{w}</li>
          ))}
        </ul>
      )}
      {webhookTables.length > 0 && <WebhookPanel sourceId={source.id} />}
      <p>
        <a class="button" href={`#/sources/${source.id}`}>
          Open the source
        </a>
      </p>
    </section>
  );
}

export function WebhookPanel({ sourceId }: { sourceId: string }) {
  const info = useLoad(() => api('GET', `/api/sources/${sourceId}/webhook-info`), [sourceId]);
  const [result, setResult] = useState<any>(null);
  const [error, setError] = useState<string | null>(null);
  async function register() {
    setError(null);
    try {
      setResult(await api('POST', `/api/sources/${sourceId}/webhook`));
      info.reload();
    } catch (err) {
      setError(errText(err));
    }
  }
  const i: any = info.data;
  return (
    <section aria-labelledby="webhook-h">
      <h2 id="webhook-h">Webhook</h2>
      <ErrorBox error={info.error ?? error} />
      {i && (
        <dl class="facts">
          <dt>Tributary's intake</dt>
          <dd>
            {i.webhook_url ?? '—'} — {i.intake ? (i.intake.enabled ? `enabled, ${i.intake.events_applied} events applied` : `not enabled: ${i.intake.reason}`) : 'not set up'}
          </dd>
          <dt>At the source</dt>
          <dd>{i.external_status ? `${i.external_status.status}${i.external_status.error ? ': ' + i.external_status.error : ''}` : i.exists ? 'registered' : 'not registered'}</dd>
        </dl>
      )}
      {result && <Notice>{result.success ? (result.already_registered ? 'Already registered: no second endpoint was created.' : 'Registered.') : `Not registered: ${result.error}`}</Notice>}
      <button type="button" onClick={register}>
        Register the webhook at the source
      </button>
    </section>
  );
}
