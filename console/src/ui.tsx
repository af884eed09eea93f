import type { ComponentChildren } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { errText } from './api';

/** Loads once per change of `deps`; `reload` runs it again. */
export function useLoad<T>(fn: () => Promise<T>, deps: unknown[] = []) {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<string | null>(null);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    fn().then(
      (d) => live && (setData(d), setError(null)),
      (e) => live && setError(errText(e)),
    );
    return () => {
      live = false;
    };
  }, [...deps, tick]);
  return { data, error, reload: () => setTick((t) => t + 1) };
}

/** Calls `fn` every `ms` while the page shows, for statuses that move on their own. */
export function useInterval(fn: () => void, ms: number) {
  useEffect(() => {
    const t = setInterval(fn, ms);
    return () => clearInterval(t);
  }, [ms]);
}

export const ErrorBox = ({ error }: { error: string | null | undefined }) =>
  error ? (
    <p class="error" role="alert">
      {error}
    </p>
  ) : null;

export const Notice = ({ children }: { children: ComponentChildren }) => (
  <p class="notice" role="status">
    {children}
  </p>
);

export const Status = ({ value }: { value: string | null | undefined }) => (
  <span class={`status status-${(value ?? 'none').toLowerCase().replace(/\s+/g, '-')}`}>{value ?? '—'}</span>
);

/** A small SVG line chart: points in time order, values ≥ 0. Hand-made, so no charting library ships. */
export function LineChart({ points, label, unit = '' }: { points: { t: number; v: number }[]; label: string; unit?: string }) {
  const w = 600;
  const h = 160;
  const pad = 36;
  if (points.length === 0) return <p class="muted">No data yet.</p>;
  const t0 = points[0].t;
  const t1 = Math.max(points[points.length - 1].t, t0 + 1);
  const vmax = Math.max(1, ...points.map((p) => p.v));
  const x = (t: number) => pad + ((t - t0) / (t1 - t0)) * (w - pad - 8);
  const y = (v: number) => h - 20 - (v / vmax) * (h - 36);
  const d = points.map((p, i) => `${i ? 'L' : 'M'}${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join(' ');
  return (
    <figure class="chart">
      <svg viewBox={`0 0 ${w} ${h}`} role="img" aria-label={`${label}: latest ${points[points.length - 1].v}${unit}, max ${vmax}${unit}`}>
        <line x1={pad} y1={h - 20} x2={w - 8} y2={h - 20} class="axis" />
        <line x1={pad} y1={16} x2={pad} y2={h - 20} class="axis" />
        <text x={pad - 4} y={20} text-anchor="end" class="tick">
          {vmax}
        </text>
        <text x={pad - 4} y={h - 20} text-anchor="end" class="tick">
          0
        </text>
        <text x={pad} y={h - 4} class="tick">
          {new Date(t0).toLocaleTimeString()}
        </text>
        <text x={w - 8} y={h - 4} text-anchor="end" class="tick">
          {new Date(t1).toLocaleTimeString()}
        </text>
        <path d={d} class="line" />
        {points.map((p) => (
          <circle cx={x(p.t)} cy={y(p.v)} r={2.5} class="dot" />
        ))}
      </svg>
      <figcaption>{label}</figcaption>
    </figure>
  );
}
