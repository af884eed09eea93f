/**
 * docker-compose.yml and Dockerfile cannot be run here (no Docker daemon), so this test reads
 * them as data and checks they agree with each other, with package.json and with
 * platform/config.ts — the compose file must not drift from the code.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { buildOpenApiDocument } from '../api/openapi';
import { ENV_READ_ELSEWHERE, loadConfig } from '../platform/config';
import { scanEnvReads } from './support/env-reads';

const root = path.resolve(__dirname, '..');
const readText = (rel: string) => fs.readFileSync(path.join(root, rel), 'utf8');

type Env = Record<string, string>;
interface Service {
  image?: string;
  build?: string | { context?: string; dockerfile?: string };
  command?: string | string[];
  entrypoint?: string | string[];
  environment?: Record<string, string | number | boolean | null> | string[];
  depends_on?: string[] | Record<string, { condition?: string }>;
  healthcheck?: { test?: string | string[]; disable?: boolean };
  ports?: Array<string | number | { target: number; published?: string | number }>;
  volumes?: Array<string | { type?: string; source?: string; target: string }>;
  container_name?: string;
}
interface Compose {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
}

const composeText = readText('docker-compose.yml');
const compose = parse(composeText, { merge: true }) as Compose;
const services = compose.services ?? {};
const pkg = JSON.parse(readText('package.json')) as {
  scripts: Record<string, string>;
  dependencies?: Record<string, string>;
};
const configText = readText('platform/config.ts');
/** Operators' settings the code reads outside loadConfig (platform/config.ts says where). */
const settingsReadElsewhere = new Set(ENV_READ_ELSEWHERE.filter((e) => e.kind === 'setting').map((e) => e.name));

const EXPECTED_SERVICES = [
  'postgresql',
  'source-postgres',
  'temporal',
  'temporal-ui',
  'clickhouse',
  'tributary-api',
  'tributary-worker',
];
const APP_SERVICES = ['tributary-api', 'tributary-worker'];
const SCALING_VARS = [
  'TEMPORAL_ADDRESS',
  'CLICKHOUSE_URL',
  'DATABASE_URL',
  'TRIBUTARY_SECRET_KEY',
  'TRIBUTARY_API_TOKEN',
];

// An environment that overrides every variable the compose file interpolates, to prove that
// values which must agree (passwords, users, database names) come from the same variable.
const OVERRIDES: Env = {
  POSTGRES_USER: 'pguser',
  POSTGRES_PASSWORD: 'pgpass',
  CLICKHOUSE_USER: 'chuser',
  CLICKHOUSE_PASSWORD: 'chpass',
  CLICKHOUSE_DATABASE: 'chdb',
  TEMPORAL_NAMESPACE: 'tributary-ns',
  TRIBUTARY_SECRET_KEY: 'ab'.repeat(32),
  TRIBUTARY_API_TOKEN: 'override-token',
  LOG_LEVEL: 'debug',
  SOURCE_POSTGRES_USER: 'srcuser',
  SOURCE_POSTGRES_PASSWORD: 'srcpass',
  SOURCE_POSTGRES_DB: 'srcdb',
};
const ENVIRONMENTS: Array<[string, Env]> = [
  ['defaults (no .env)', {}],
  ['every variable overridden', OVERRIDES],
];

/** Compose-style interpolation: $$, $VAR, ${VAR}, ${VAR:-d}, ${VAR-d}, ${VAR:?e}, ${VAR?e}, ${VAR:+r}, ${VAR+r}. */
function interpolate(value: string, env: Env): string {
  return value.replace(
    /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g,
    (match, name?: string, op?: string, arg?: string, bare?: string) => {
      if (match === '$$') return '$';
      if (bare) return env[bare] ?? '';
      const v = env[name!];
      const unsetOrEmpty = v === undefined || (op?.startsWith(':') && v === '');
      switch (op) {
        case ':-':
        case '-':
          return unsetOrEmpty ? (arg ?? '') : v!;
        case ':?':
        case '?':
          if (unsetOrEmpty) throw new Error(`required variable ${name} is unset: ${arg}`);
          return v!;
        case ':+':
        case '+':
          return unsetOrEmpty ? '' : (arg ?? '');
        default:
          return v ?? '';
      }
    },
  );
}

function envOf(name: string, vars: Env): Env {
  const raw = services[name]?.environment ?? {};
  const pairs: Array<[string, string]> = Array.isArray(raw)
    ? raw.map((line) => {
        const i = line.indexOf('=');
        return (i < 0 ? [line, vars[line] ?? ''] : [line.slice(0, i), line.slice(i + 1)]) as [string, string];
      })
    : Object.entries(raw).map(([k, v]) => [k, v === null || v === undefined ? vars[k] ?? '' : String(v)]);
  return Object.fromEntries(pairs.map(([k, v]) => [k, interpolate(v, vars)]));
}

const argv = (c: string | string[] | undefined): string[] | undefined =>
  c === undefined ? undefined : Array.isArray(c) ? c.map(String) : c.trim().split(/\s+/);

function imageRef(image: string): { repo: string; tag?: string; digest?: string } {
  const [withoutDigest, digest] = image.split('@');
  const lastSlash = withoutDigest.lastIndexOf('/');
  const lastColon = withoutDigest.lastIndexOf(':');
  if (lastColon > lastSlash) {
    return { repo: withoutDigest.slice(0, lastColon), tag: withoutDigest.slice(lastColon + 1), digest };
  }
  return { repo: withoutDigest, digest };
}

const serviceWithImage = (repo: string) =>
  Object.keys(services).filter((s) => services[s].image && imageRef(services[s].image!).repo === repo);

function dependsOn(name: string): Record<string, string> {
  const d = services[name]?.depends_on ?? {};
  return Array.isArray(d)
    ? Object.fromEntries(d.map((t) => [t, 'service_started']))
    : Object.fromEntries(Object.entries(d).map(([t, v]) => [t, v?.condition ?? 'service_started']));
}

function publishedPorts(name: string): Array<{ host?: string; published?: string; target: string }> {
  return (services[name]?.ports ?? []).map((p) => {
    if (typeof p === 'object') return { published: p.published?.toString(), target: String(p.target) };
    const parts = String(p).split(':');
    const target = parts.pop()!.split('/')[0];
    const published = parts.pop();
    return { host: parts.pop(), published, target };
  });
}

/** Names config.ts reads: env.NAME, env['NAME'], and helpers called as fn(env, 'NAME', ...). */
function configEnvNames(): Set<string> {
  const names = new Set<string>();
  const re = /\benv(?:\.([A-Z][A-Z0-9_]*)|\[\s*['"]([A-Z][A-Z0-9_]*)['"]\s*\]|\s*,\s*['"]([A-Z][A-Z0-9_]*)['"])/g;
  for (const m of configText.matchAll(re)) names.add(m[1] ?? m[2] ?? m[3]);
  return names;
}

interface Dockerfile {
  from: string[];
  instructions: Array<{ op: string; args: string }>;
  env: Env;
}
function parseDockerfile(text: string): Dockerfile {
  const logical = text
    .replace(/\\\r?\n/g, ' ')
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const instructions = logical.map((l) => {
    const m = /^(\S+)\s*(.*)$/.exec(l)!;
    return { op: m[1].toUpperCase(), args: m[2].trim() };
  });
  const env: Env = {};
  for (const { op, args } of instructions.filter((i) => i.op === 'ENV')) {
    if (/^[A-Za-z_][A-Za-z0-9_]*=/.test(args)) {
      for (const m of args.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|\S*)/g)) env[m[1]] = m[2].replace(/^"|"$/g, '');
    } else {
      const [k, ...rest] = args.split(/\s+/);
      env[k] = rest.join(' ');
    }
  }
  return { from: instructions.filter((i) => i.op === 'FROM').map((i) => i.args.split(/\s+/)[0]), instructions, env };
}
const execForm = (args: string): string[] => {
  const parsed = JSON.parse(args) as unknown;
  if (!Array.isArray(parsed)) throw new Error(`not exec form: ${args}`);
  return parsed.map(String);
};

/** `npm run <script>` / `npm start` → the package.json script it runs, if any. */
function npmScript(cmd: string[]): string | undefined {
  if (cmd[0] !== 'npm') return undefined;
  if (cmd[1] === 'run' || cmd[1] === 'run-script') return cmd[2];
  if (cmd[1] === 'start' || cmd[1] === 'test') return cmd[1];
  return undefined;
}

describe('docker-compose.yml', () => {
  test('is a mapping with the expected services, each with an image or a build', () => {
    expect(typeof compose).toBe('object');
    expect(Object.keys(services)).toEqual(expect.arrayContaining(EXPECTED_SERVICES));
    for (const [name, svc] of Object.entries(services)) {
      expect({ name, hasImageOrBuild: Boolean(svc.image || svc.build) }).toEqual({ name, hasImageOrBuild: true });
    }
    for (const app of APP_SERVICES) expect(services[app].build).toBeDefined();
  });

  test('every ${...} interpolation is well formed', () => {
    const opens = composeText.match(/(?<!\$)\$\{/g) ?? [];
    const wellFormed = composeText.match(/(?<!\$)\$\{[A-Za-z_][A-Za-z0-9_]*(?::?[-?+][^}\n]*)?\}/g) ?? [];
    expect(wellFormed.length).toBe(opens.length);
  });

  test('every image is pinned to a version (no missing tag, no latest)', () => {
    const images = Object.entries(services).filter(([, s]) => s.image);
    expect(images.length).toBeGreaterThanOrEqual(5);
    for (const [name, svc] of images) {
      const ref = imageRef(interpolate(svc.image!, {}));
      const pinned = Boolean(ref.digest) || (Boolean(ref.tag) && ref.tag !== 'latest' && /\d/.test(ref.tag!));
      expect({ service: name, image: svc.image, pinned }).toEqual({ service: name, image: svc.image, pinned: true });
    }
  });

  test('ClickHouse server is 24.x or newer; Postgres is new enough for Temporal (postgres12)', () => {
    const ch = imageRef(services.clickhouse.image!);
    expect(ch.repo).toBe('clickhouse/clickhouse-server');
    expect(Number(/^(\d+)\./.exec(ch.tag ?? '')?.[1] ?? /^(\d+)$/.exec(ch.tag ?? '')?.[1])).toBeGreaterThanOrEqual(24);
    for (const pg of ['postgresql', 'source-postgres']) {
      const ref = imageRef(services[pg].image!);
      expect(ref.repo).toBe('postgres');
      expect(Number(/^(\d+)/.exec(ref.tag ?? '')?.[1])).toBeGreaterThanOrEqual(12);
    }
  });

  test('source-postgres runs with logical replication enabled', () => {
    const cmd = argv(services['source-postgres'].command) ?? [];
    expect(cmd[0]).toBe('postgres');
    const settings: Env = {};
    cmd.forEach((arg, i) => {
      if (arg === '-c' && cmd[i + 1]?.includes('=')) {
        const [k, v] = cmd[i + 1].split('=');
        settings[k] = v;
      }
    });
    expect(settings.wal_level).toBe('logical');
    expect(Number(settings.max_replication_slots)).toBeGreaterThan(0);
    expect(Number(settings.max_wal_senders)).toBeGreaterThan(0);
  });

  test('Temporal is wired to the postgresql service with the same credentials', () => {
    expect(imageRef(services.temporal.image!).repo).toMatch(/^temporalio\/(auto-setup|server)$/);
    for (const [, vars] of ENVIRONMENTS) {
      const t = envOf('temporal', vars);
      const pg = envOf('postgresql', vars);
      expect(t.DB).toBe('postgres12');
      expect(t.POSTGRES_SEEDS).toBe('postgresql');
      expect(Number(t.DB_PORT ?? '5432')).toBe(5432);
      expect(t.POSTGRES_USER).toBe(pg.POSTGRES_USER);
      expect(t.POSTGRES_PWD).toBe(pg.POSTGRES_PASSWORD);
      expect(pg.POSTGRES_PASSWORD).toBeTruthy();
    }
    expect(dependsOn('temporal').postgresql).toBe('service_healthy');
    expect(envOf('temporal-ui', {}).TEMPORAL_ADDRESS).toBe('temporal:7233');
  });

  describe.each(APP_SERVICES)('%s', (app) => {
    test.each(ENVIRONMENTS)('is wired to the other services (%s)', (_label, vars) => {
      const env = envOf(app, vars);

      // Temporal frontend: <service>:7233 of a Temporal server service.
      const [tHost, tPort] = env.TEMPORAL_ADDRESS.split(':');
      expect(tHost).toBe('temporal');
      expect(serviceWithImage(imageRef(services.temporal.image!).repo)).toContain(tHost);
      expect(tPort).toBe('7233');
      const namespace = envOf('temporal', vars).DEFAULT_NAMESPACE ?? 'default';
      expect(env.TEMPORAL_NAMESPACE ?? 'default').toBe(namespace);

      // ClickHouse over HTTP, with the credentials and database the server creates.
      const ch = new URL(env.CLICKHOUSE_URL);
      expect(ch.protocol).toBe('http:');
      expect(ch.hostname).toBe('clickhouse');
      expect(serviceWithImage('clickhouse/clickhouse-server')).toContain(ch.hostname);
      expect(ch.port).toBe('8123');
      const chServer = envOf('clickhouse', vars);
      expect(env.CLICKHOUSE_USER).toBe(chServer.CLICKHOUSE_USER);
      expect(env.CLICKHOUSE_PASSWORD).toBe(chServer.CLICKHOUSE_PASSWORD);
      expect(env.CLICKHOUSE_DATABASE).toBe(chServer.CLICKHOUSE_DB);

      // Catalog: the tributary database on the postgresql service.
      const db = new URL(env.DATABASE_URL);
      expect(db.protocol).toMatch(/^postgres(ql)?:$/);
      expect(db.hostname).toBe('postgresql');
      expect(services.postgresql).toBeDefined();
      expect(db.port || '5432').toBe('5432');
      const pg = envOf('postgresql', vars);
      expect(decodeURIComponent(db.username)).toBe(pg.POSTGRES_USER ?? 'postgres');
      expect(decodeURIComponent(db.password)).toBe(pg.POSTGRES_PASSWORD);
      expect(db.pathname).toBe('/tributary');

      expect(env.TRIBUTARY_SECRET_KEY).toMatch(/^[0-9a-fA-F]{64}$/);
      expect(env.TRIBUTARY_API_TOKEN.length).toBeGreaterThan(0);
      expect(env.TRIBUTARY_DATA_DIR).toBe('/data');
    });

    test('sets every env var that matters for scaling', () => {
      const env = envOf(app, {});
      for (const name of SCALING_VARS) {
        expect({ var: name, set: Boolean(env[name]) }).toEqual({ var: name, set: true });
      }
    });

    test('sets only env vars that platform/config.ts reads (in loadConfig, or a setting in ENV_READ_ELSEWHERE)', () => {
      const known = new Set([...configEnvNames(), ...settingsReadElsewhere]);
      // Guard the grep itself: if config.ts changes shape, fail here rather than pass vacuously.
      expect([...configEnvNames()]).toEqual(expect.arrayContaining([...SCALING_VARS, 'TRIBUTARY_DATA_DIR']));
      const raw = services[app].environment ?? {};
      const names = Array.isArray(raw) ? raw.map((l) => l.split('=')[0]) : Object.keys(raw);
      expect(names.length).toBeGreaterThan(0);
      expect(names.filter((n) => !known.has(n))).toEqual([]);
    });

    test('waits for its dependencies', () => {
      const deps = dependsOn(app);
      expect(deps.postgresql).toBe('service_healthy');
      expect(deps.clickhouse).toBe('service_healthy');
      expect(['service_started', 'service_healthy']).toContain(deps.temporal);
    });

    test('runs the matching package.json script', () => {
      const role = app === 'tributary-api' ? 'api' : 'worker';
      const cmd = argv(services[app].command);
      expect(cmd).toEqual(['npm', 'run', role]);
      expect(services[app].entrypoint).toBeUndefined();
      const script = pkg.scripts[role];
      expect(script).toBeDefined();
      expect(script).toMatch(new RegExp(`\\b${role}\\b`));
      // The image installs with --omit=dev: the binary the script starts must be a runtime dependency.
      const bin = script.trim().split(/\s+/)[0];
      if (!['node', 'npm', 'npx'].includes(bin)) expect(Object.keys(pkg.dependencies ?? {})).toContain(bin);
    });
  });

  test('api and worker share one configuration', () => {
    for (const [, vars] of ENVIRONMENTS) {
      expect(envOf('tributary-worker', vars)).toEqual(envOf('tributary-api', vars));
    }
  });

  test('the API listens on all interfaces, on the port it publishes', () => {
    const dockerfile = parseDockerfile(readText('Dockerfile'));
    const env = { ...dockerfile.env, ...envOf('tributary-api', {}) };
    expect(env.TRIBUTARY_API_HOST).toBe('0.0.0.0');
    const port = env.TRIBUTARY_API_PORT ?? '8000';
    expect(publishedPorts('tributary-api').map((p) => p.target)).toContain(port);
  });

  test('workers can be scaled: no fixed container name, no published port', () => {
    expect(services['tributary-worker'].container_name).toBeUndefined();
    expect(services['tributary-worker'].ports ?? []).toEqual([]);
  });

  test('every depends_on target is a defined service, and healthy conditions have a healthcheck', () => {
    const conditions = ['service_started', 'service_healthy', 'service_completed_successfully'];
    let edges = 0;
    for (const name of Object.keys(services)) {
      for (const [target, condition] of Object.entries(dependsOn(name))) {
        edges++;
        expect({ from: name, target, defined: target in services }).toEqual({ from: name, target, defined: true });
        expect(conditions).toContain(condition);
        if (condition === 'service_healthy') {
          const hc = services[target].healthcheck;
          expect({ target, healthcheck: Boolean(hc?.test) && !hc?.disable }).toEqual({ target, healthcheck: true });
        }
      }
    }
    expect(edges).toBeGreaterThanOrEqual(6);
  });

  test('named volumes are declared and bind-mounted files exist', () => {
    const declared = Object.keys(compose.volumes ?? {});
    for (const [name, svc] of Object.entries(services)) {
      for (const v of svc.volumes ?? []) {
        const source = typeof v === 'string' ? v.split(':')[0] : v.source;
        if (!source) continue;
        if (/^[./~]/.test(source)) {
          expect({ service: name, source, exists: fs.existsSync(path.resolve(root, source)) }).toEqual({
            service: name,
            source,
            exists: true,
          });
        } else {
          expect({ service: name, volume: source, declared: declared.includes(source) }).toEqual({
            service: name,
            volume: source,
            declared: true,
          });
        }
      }
    }
    expect(services.clickhouse.volumes?.length).toBeGreaterThan(0);
    expect(services.postgresql.volumes?.length).toBeGreaterThan(0);
  });

  test('the catalog database in DATABASE_URL is created on the postgresql service', () => {
    const dbName = new URL(envOf('tributary-api', {}).DATABASE_URL).pathname.slice(1);
    const pg = envOf('postgresql', {});
    const initScripts = (services.postgresql.volumes ?? [])
      .map((v) => (typeof v === 'string' ? v.split(':') : [v.source ?? '', v.target]))
      .filter(([src, target]) => /^[./]/.test(src) && target.startsWith('/docker-entrypoint-initdb.d'))
      .map(([src]) => fs.readFileSync(path.resolve(root, src), 'utf8'));
    const createdByInit = initScripts.some((sql) => new RegExp(`CREATE DATABASE\\s+"?${dbName}"?`, 'i').test(sql));
    expect(createdByInit || pg.POSTGRES_DB === dbName).toBe(true);
  });

  test('no two services publish the same host port', () => {
    const published = Object.keys(services).flatMap((s) =>
      publishedPorts(s)
        .filter((p) => p.published)
        .map((p) => `${p.host ?? '*'}:${p.published}`),
    );
    expect(published.length).toBeGreaterThanOrEqual(4);
    expect(new Set(published).size).toBe(published.length);
    expect(publishedPorts('temporal-ui')).toEqual(expect.arrayContaining([expect.objectContaining({ published: '8233', target: '8080' })]));
    expect(publishedPorts('temporal').map((p) => p.target)).toContain('7233');
    expect(publishedPorts('clickhouse').map((p) => p.target)).toContain('8123');
  });

  test('ClickHouse has its credentials, a nofile ulimit and a healthcheck', () => {
    const ch = services.clickhouse as Service & { ulimits?: { nofile?: { soft: number; hard: number } | number } };
    const env = envOf('clickhouse', {});
    expect(env.CLICKHOUSE_USER).toBeTruthy();
    expect(env.CLICKHOUSE_DB).toBeTruthy();
    expect('CLICKHOUSE_PASSWORD' in env).toBe(true);
    expect(ch.ulimits?.nofile).toBeDefined();
    expect(JSON.stringify(ch.healthcheck?.test)).toMatch(/8123\/ping|clickhouse-client/);
  });
});

describe('Dockerfile', () => {
  const dockerfilePath = path.join(root, 'Dockerfile');

  test('exists, and the compose build context holds it', () => {
    expect(fs.existsSync(dockerfilePath)).toBe(true);
    for (const app of APP_SERVICES) {
      const build = services[app].build!;
      const context = typeof build === 'string' ? build : build.context ?? '.';
      const file = typeof build === 'string' ? 'Dockerfile' : build.dockerfile ?? 'Dockerfile';
      expect(path.resolve(root, context, file)).toBe(dockerfilePath);
    }
  });

  test('builds from node:20-bookworm-slim with production dependencies only', () => {
    const df = parseDockerfile(readText('Dockerfile'));
    expect(df.from).toEqual(['node:20-bookworm-slim']);
    const ops = df.instructions;
    const lockCopy = ops.findIndex((i) => i.op === 'COPY' && /package\.json/.test(i.args) && /package-lock\.json/.test(i.args));
    const install = ops.findIndex((i) => i.op === 'RUN' && /npm (ci|install)\b[^&;|]*--omit=dev/.test(i.args));
    const sourceCopy = ops.findIndex((i, idx) => idx > install && i.op === 'COPY' && /^\.\s+\S+$/.test(i.args));
    expect(lockCopy).toBeGreaterThanOrEqual(0);
    expect(install).toBeGreaterThan(lockCopy);
    expect(sourceCopy).toBeGreaterThan(install);
    expect(df.env.TRIBUTARY_API_HOST).toBe('0.0.0.0');
    expect(ops.filter((i) => i.op === 'EXPOSE').flatMap((i) => i.args.split(/\s+/))).toContain('8000');
    // tsx runs the sources at runtime, so it must survive --omit=dev.
    expect(Object.keys(pkg.dependencies ?? {})).toContain('tsx');
  });

  test('CMD / ENTRYPOINT run a package.json script that exists, and match the api service', () => {
    const df = parseDockerfile(readText('Dockerfile'));
    const last = (op: string) => df.instructions.filter((i) => i.op === op).pop();
    const entrypoint = last('ENTRYPOINT');
    const cmd = last('CMD');
    expect(cmd).toBeDefined();
    const full = [...(entrypoint ? execForm(entrypoint.args) : []), ...execForm(cmd!.args)];
    const script = npmScript(full);
    expect(script).toBeDefined();
    expect(Object.keys(pkg.scripts)).toContain(script);
    // Compose commands replace CMD and are appended to ENTRYPOINT: with an ENTRYPOINT they would
    // no longer be `npm run …`.
    expect(entrypoint).toBeUndefined();
    expect(full).toEqual(argv(services['tributary-api'].command));
    for (const app of APP_SERVICES) {
      const s = npmScript(argv(services[app].command) ?? []);
      expect(Object.keys(pkg.scripts)).toContain(s);
    }
  });

  test('.dockerignore keeps local state out of the build context', () => {
    const ignored = readText('.dockerignore')
      .split(/\r?\n/)
      .map((l) => l.trim().replace(/^\/|\/$/g, ''))
      .filter((l) => l && !l.startsWith('#'));
    expect(ignored).toEqual(expect.arrayContaining(['node_modules', '.data', '.tools', '.git']));
  });
});

/** Every name loadConfig reads from the environment it is given (recorded, not grepped), and what it made of it. */
function configReads(env: Env): { names: Set<string>; config: ReturnType<typeof loadConfig> } {
  const names = new Set<string>();
  const recording = new Proxy({ ...env } as NodeJS.ProcessEnv, {
    get(target, key) {
      if (typeof key === 'string') names.add(key);
      return target[key as string];
    },
    has(target, key) {
      if (typeof key === 'string') names.add(key);
      return key in target;
    },
  });
  return { names, config: loadConfig(recording) };
}

/** The URL a healthcheck's command fetches (wget, curl, or node's fetch). */
function healthcheckUrl(test: string | string[] | undefined): URL | undefined {
  const text = Array.isArray(test) ? test.join(' ') : (test ?? '');
  const m = /https?:\/\/[^\s'"`)]+/.exec(text);
  return m ? new URL(m[0]) : undefined;
}

describe('docker-compose.yml against the code that reads it', () => {
  describe.each(APP_SERVICES)('%s', (app) => {
    test.each(ENVIRONMENTS)('every variable platform/config.ts reads is set here or has its default (%s)', (_label, vars) => {
      const env = envOf(app, vars);
      const { names, config } = configReads(env);
      // The grep of config.ts above is a subset of what loadConfig really reads (the recording sees helpers too).
      expect([...names]).toEqual(expect.arrayContaining([...configEnvNames()]));
      expect(names.size).toBeGreaterThan(30);
      // Unset ones are defaulted: the config loads with exactly this environment, and the scaled parts are servers.
      expect(config.temporal.address).toBe(env.TEMPORAL_ADDRESS);
      expect(config.clickhouse.url).toBe(env.CLICKHOUSE_URL);
      expect(config.catalog.databaseUrl).toBe(env.DATABASE_URL);
      expect(config.secretKey).toBe(env.TRIBUTARY_SECRET_KEY);
      expect(config.api.token).toBe(env.TRIBUTARY_API_TOKEN);
      // Each variable set here is one the code reads, and each that is read but unset leaves its default.
      expect(Object.keys(env).filter((n) => !names.has(n) && !settingsReadElsewhere.has(n))).toEqual([]);
      const unset = [...names].filter((n) => !(n in env));
      const defaults = configReads({}).config;
      const withoutSet = configReads(Object.fromEntries(unset.map((n) => [n, '']))).config;
      expect(withoutSet).toEqual(defaults);
    });
  });

  test('healthchecks fetch endpoints that exist: the API its /health route, ClickHouse its documented /ping', () => {
    const apiUrl = healthcheckUrl(services['tributary-api'].healthcheck?.test);
    expect(apiUrl).toBeDefined();
    const paths = Object.keys((buildOpenApiDocument() as { paths: Record<string, unknown> }).paths);
    expect(paths).toContain(apiUrl!.pathname);
    expect(apiUrl!.port).toBe(String(loadConfig(envOf('tributary-api', {})).api.port));
    expect(envOf('tributary-api', {}).TRIBUTARY_API_HOST).toBe('0.0.0.0');
    // The worker serves no HTTP: nothing to check, and no healthcheck pretending otherwise.
    expect(services['tributary-worker'].healthcheck).toBeUndefined();
    const chUrl = healthcheckUrl(services.clickhouse.healthcheck?.test);
    expect(chUrl?.pathname).toBe('/ping');
    expect(chUrl?.port).toBe('8123');
  });
});

/** Every variable named in the first column of the README's tables headed `| variable |` (the Configuration tables). */
function readmeEnvTable(): Set<string> {
  const names = new Set<string>();
  let inTable = false;
  for (const line of readText('README.md').split('\n')) {
    if (/^\|\s*variable\s*\|/.test(line)) inTable = true;
    else if (!line.startsWith('|')) inTable = false;
    else if (inTable) for (const m of line.split('|')[1].matchAll(/`([A-Z][A-Z0-9_]*)`/g)) names.add(m[1]);
  }
  return names;
}

describe('environment variables read anywhere in the code, against platform/config.ts and docker-compose.yml', () => {
  // All non-test code (platform, api, activities, workflows, temporal, warehouse, destinations, connectors, catalog…),
  // parsed: test/support/env-reads.ts says which reads it finds and how it follows a computed name.
  const scan = scanEnvReads(root);
  const readAt = new Map<string, string[]>();
  for (const r of scan.reads) readAt.set(r.name, [...(readAt.get(r.name) ?? []), r.at]);
  const byLoadConfig = new Set([...ENVIRONMENTS.map(([, vars]) => vars), ...APP_SERVICES.map((app) => envOf(app, {}))].flatMap((vars) => [...configReads(vars).names]));
  const elsewhere = new Map(ENV_READ_ELSEWHERE.map((e) => [e.name, e]));

  test('the scan covers the code and follows every computed name (guarding itself)', () => {
    expect(scan.unresolved).toEqual([]);
    expect(scan.files).toEqual(expect.arrayContaining(['platform/config.ts', 'temporal/cdc-mirrors.ts', 'activities/cdc.ts', 'warehouse/client.ts', 'connectors/kit/pacer.ts', 'api/app.ts']));
    expect(scan.files.filter((f) => /^(test|scripts|console|node_modules)\//.test(f))).toEqual([]);
    // Each kind of read: process.env.X, a helper's parameter (setting('X')), a constant (NAMED_COLLECTIONS_KEY_ENV),
    // a ProcessEnv parameter (laneSizes(env)), a constant object's values (QUERY_LIMIT_ENV[key]).
    expect(readAt.get('TRIBUTARY_STREAM_HEARTBEAT_TIMEOUT_MS')?.map((at) => at.split(':')[0]).sort()).toEqual(['temporal/cdc-mirrors.ts', 'temporal/cdc-mirrors.ts', 'temporal/destination-workflows.ts']);
    for (const name of ['TRIBUTARY_CDC_FLUSH_MS', 'TRIBUTARY_STRIPE_TEST_RPS', 'TRIBUTARY_ENGINE_NAMED_COLLECTIONS_KEY', 'TRIBUTARY_ENGINE_SESSIONS', 'TRIBUTARY_QUERY_MAX_THREADS', 'TEMPORAL_CLI_PATH']) {
      expect({ name, found: readAt.has(name) }).toEqual({ name, found: true });
    }
    expect(readAt.size).toBeGreaterThan(60);
  });

  test('every variable the code reads is read by loadConfig or declared in ENV_READ_ELSEWHERE', () => {
    const undeclared = [...readAt].filter(([name]) => !byLoadConfig.has(name) && !elsewhere.has(name)).map(([name, at]) => `${name} (${at.join(', ')})`);
    expect(undeclared).toEqual([]);
  });

  test('ENV_READ_ELSEWHERE holds each name once, each read by the code, none that loadConfig reads', () => {
    expect(new Set(ENV_READ_ELSEWHERE.map((e) => e.name)).size).toBe(ENV_READ_ELSEWHERE.length);
    expect(ENV_READ_ELSEWHERE.filter((e) => !readAt.has(e.name)).map((e) => e.name)).toEqual([]);
    expect(ENV_READ_ELSEWHERE.filter((e) => byLoadConfig.has(e.name)).map((e) => e.name)).toEqual([]);
    // Where it is read: the list names at least one file the scan found it in.
    for (const e of ENV_READ_ELSEWHERE) {
      const files = new Set(readAt.get(e.name)!.map((at) => at.split(':')[0]));
      expect({ name: e.name, where: [...files].some((f) => e.where.includes(f)) }).toEqual({ name: e.name, where: true });
    }
  });

  test.each(APP_SERVICES)('%s: each setting read elsewhere is set in docker-compose.yml or documented in the README; test hooks, internal and system ones are not set', (app) => {
    const env = envOf(app, {});
    const documented = readmeEnvTable();
    expect(documented.size).toBeGreaterThan(50);
    const neither = ENV_READ_ELSEWHERE.filter((e) => e.kind === 'setting' && !(e.name in env) && !documented.has(e.name)).map((e) => e.name);
    expect(neither).toEqual([]);
    expect(ENV_READ_ELSEWHERE.filter((e) => e.kind !== 'setting' && e.name in env).map((e) => e.name)).toEqual([]);
  });
});
