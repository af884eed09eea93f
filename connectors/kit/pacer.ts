import { sleep } from './waiting';

/**
 * Spaces calls evenly at `rps` (a bucket of one): the process's calls through one pacer never exceed it.
 * Pacers are kept per credential (`pacerFor`), because APIs limit per key, not per table.
 *
 * A slot is given when its caller is let go, not booked ahead: callers woken late together (the event loop was busy)
 * are let go one interval apart from then on, where booked slots would all go at once and put more than `rps` calls
 * in one second (the Stripe pacing e2e saw 43 at 40/s).
 */
export class Pacer {
  private next = 0;
  /** The callers in line, in the order they asked: each waits for the one before it to be let go. */
  private line: Promise<void> = Promise.resolve();
  constructor(private readonly rps: number) {}

  slot(): Promise<void> {
    const turn = this.line.then(async () => {
      const wait = this.next - Date.now();
      if (wait > 0) await sleep(wait);
      this.next = Date.now() + 1000 / this.rps;
    });
    this.line = turn;
    return turn;
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
