import { sleep } from './waiting';

/**
 * Spaces calls evenly at `rps` (a bucket of one): the process's calls through one pacer never exceed it.
 * Pacers are kept per credential (`pacerFor`), because APIs limit per key, not per table.
 */
export class Pacer {
  private next = 0;
  constructor(private readonly rps: number) {}

  async slot(): Promise<void> {
    const now = Date.now();
    const at = Math.max(now, this.next);
    this.next = at + 1000 / this.rps;
    if (at > now) await sleep(at - now);
  }
}

const pacers = new Map<string, Pacer>();

/** The process-wide pacer for one credential of one API (`api` keeps two APIs' keys apart). */
export function pacerFor(api: string, key: string, rps: number): Pacer {
  const id = `${api}\u0000${key}\u0000${rps}`;
  let pacer = pacers.get(id);
  if (!pacer) pacers.set(id, (pacer = new Pacer(rps)));
  return pacer;
}

/** A positive number from the environment, else `fallback` (pacing settings such as TRIBUTARY_STRIPE_TEST_RPS). */
export function rateFromEnv(name: string, fallback: number): number {
  const v = Number(process.env[name]);
  return Number.isFinite(v) && v > 0 ? v : fallback;
}
