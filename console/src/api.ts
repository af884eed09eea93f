/** Every call goes through the public REST API with the token the user signed in with (sessionStorage only). */
const TOKEN_KEY = 'tributary-token';

export const getToken = () => sessionStorage.getItem(TOKEN_KEY);
export const setToken = (t: string | null) => (t === null ? sessionStorage.removeItem(TOKEN_KEY) : sessionStorage.setItem(TOKEN_KEY, t));

export class ApiFailure extends Error {
  constructor(
    public status: number,
    public body: any,
  ) {
    super(body?.message ?? `HTTP ${status}`);
  }
}

let onUnauthorized: () => void = () => undefined;
export const whenUnauthorized = (fn: () => void) => (onUnauthorized = fn);

export async function api<T = any>(method: string, path: string, body?: unknown, token = getToken()): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let parsed: any = text;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    /* not JSON: keep the text */
  }
  if (res.status === 401 && token === getToken()) onUnauthorized();
  if (!res.ok) throw new ApiFailure(res.status, typeof parsed === 'object' && parsed ? parsed : { message: String(parsed) });
  return parsed as T;
}

export const qs = (params: Record<string, string | number | boolean | undefined | null>) => {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') p.set(k, String(v));
  const s = p.toString();
  return s ? `?${s}` : '';
};

export const FREQUENCIES = ['never', '1min', '5min', '15min', '30min', '1hour', '6hour', '12hour', '24hour', '7day', '30day'] as const;
/** The API's rule: 1min only for CDC. */
export const frequenciesFor = (syncType: string | null | undefined) => FREQUENCIES.filter((f) => f !== '1min' || syncType === 'cdc');

export const fmtTime = (t: string | null | undefined) => (t ? new Date(t).toLocaleString() : '—');
export const fmtBytes = (n: number | null | undefined) => {
  if (n === null || n === undefined) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) (v /= 1024), i++;
  return `${v.toFixed(i ? 1 : 0)} ${units[i]}`;
};
export const errText = (e: unknown) => (e instanceof ApiFailure ? e.body?.message ?? e.message : (e as Error)?.message ?? String(e));
