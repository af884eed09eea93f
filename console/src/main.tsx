import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, errText, getToken, setToken, whenUnauthorized } from './api';
import { AlertsPage } from './alerts';
import { DestinationPage, DestinationsPage } from './destinations';
import { JobsPage } from './jobs';
import { QueryPage } from './query';
import { SourcePage } from './source';
import { SourcesPage } from './sources';
import { NewSourcePage } from './wizard';

/** Hash routes (#/sources/…): the API serves one index.html, and a reload keeps the page. */
function useRoute() {
  const read = () => (location.hash.replace(/^#/, '') || '/sources').split('?');
  const [route, setRoute] = useState(read());
  useEffect(() => {
    const on = () => setRoute(read());
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return { path: route[0], query: new URLSearchParams(route[1] ?? '') };
}

function SignIn({ onSignedIn }: { onSignedIn: () => void }) {
  const [token, setValue] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  async function submit(e: Event) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      // Any authenticated read checks the token; the source types are small.
      await api('GET', '/api/source-types', undefined, token.trim());
      setToken(token.trim());
      onSignedIn();
    } catch (err) {
      setError(errText(err));
    } finally {
      setBusy(false);
    }
  }
  return (
    <main class="signin">
      <h1>Tributary</h1>
      <form onSubmit={submit}>
        <label for="token">API token</label>
        <input id="token" name="token" type="password" autocomplete="current-password" required value={token} onInput={(e) => setValue(e.currentTarget.value)} />
        <p class="muted">Printed by <code>npm start</code> (or in <code>.data/api-token</code>). Kept for this browser tab only.</p>
        <button type="submit" disabled={busy}>
          Sign in
        </button>
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
      </form>
    </main>
  );
}

const NAV = [
  ['#/sources', 'Sources'],
  ['#/jobs', 'Jobs'],
  ['#/destinations', 'Destinations'],
  ['#/query', 'Query'],
  ['#/alerts', 'Alerts'],
] as const;

function App() {
  const [signedIn, setSignedIn] = useState(!!getToken());
  const { path, query } = useRoute();
  useEffect(() => {
    whenUnauthorized(() => {
      setToken(null);
      setSignedIn(false);
    });
  }, []);
  if (!signedIn) return <SignIn onSignedIn={() => setSignedIn(true)} />;
  const parts = path.split('/').filter(Boolean);
  let page;
  if (parts[0] === 'sources' && parts[1] === 'new') page = <NewSourcePage />;
  else if (parts[0] === 'sources' && parts[1]) page = <SourcePage id={parts[1]} />;
  else if (parts[0] === 'jobs') page = <JobsPage schemaId={query.get('schema_id') ?? undefined} sourceId={query.get('source_id') ?? undefined} />;
  else if (parts[0] === 'destinations' && parts[1]) page = <DestinationPage id={parts[1]} />;
  else if (parts[0] === 'destinations') page = <DestinationsPage />;
  else if (parts[0] === 'query') page = <QueryPage />;
  else if (parts[0] === 'alerts') page = <AlertsPage />;
  else page = <SourcesPage />;
  const section = '#/' + (parts[0] ?? 'sources');
  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header>
        <strong class="brand">Tributary</strong>
        <nav aria-label="Main">
          {NAV.map(([href, label]) => (
            <a href={href} aria-current={section === href ? 'page' : undefined}>
              {label}
            </a>
          ))}
          <a href="/docs">API docs</a>
        </nav>
        <button
          type="button"
          class="link"
          onClick={() => {
            setToken(null);
            setSignedIn(false);
          }}
        >
          Sign out
        </button>
      </header>
      <main id="main" tabIndex={-1}>
        {page}
      </main>
    </>
  );
}

render(<App />, document.getElementById('app')!);
