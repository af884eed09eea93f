/**
 * The embedded engine's sessions, grouped in lanes by the kind of work they run. chDB runs one statement at a
 * time per session — a second one waits for the first to end — but the sessions of one data dir run side by
 * side (measured with chdb 3.4: `SELECT 1` waited 6 s behind a long SELECT on the same session, 3 ms on
 * another; an INSERT on another session went through while six streaming loads were still reading their
 * pipes). So a request takes an idle session of its lane, or opens one (a couple of milliseconds, ~1 MB),
 * and waits only when its lane has `max` statements running: a load that lasts as long as its source, or a
 * user's heavy query, never holds up CDC flushes, webhook batches or the next short query.
 */
import type { createChdbConnection } from 'chdb/connection';

export type Session = ReturnType<typeof createChdbConnection>;

export class Lane {
  private readonly all: Session[] = [];
  private readonly idle: Session[] = [];
  private readonly waiting: ((session: Session) => void)[] = [];
  private opening = 0;

  constructor(
    private readonly open: () => Promise<Session>,
    private readonly max: number,
    first?: Session,
  ) {
    if (first) {
      this.all.push(first);
      this.idle.push(first);
    }
  }

  /** Runs `work` on a session of this lane that nothing else is using meanwhile. */
  async run<T>(work: (session: Session) => Promise<T>): Promise<T> {
    const session = await this.take();
    try {
      return await work(session);
    } finally {
      this.give(session);
    }
  }

  private async take(): Promise<Session> {
    const idle = this.idle.pop();
    if (idle) return idle;
    if (this.all.length + this.opening < this.max) {
      this.opening++;
      try {
        const session = await this.open();
        this.all.push(session);
        return session;
      } finally {
        this.opening--;
      }
    }
    // First come, first served: a waiting request gets the next session to come free.
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  private give(session: Session) {
    const next = this.waiting.shift();
    if (next) next(session);
    else this.idle.push(session);
  }

  /** chDB defers a session's teardown until the statement it runs has ended. */
  async close(): Promise<void> {
    await Promise.all(this.all.map((s) => s.close()));
  }
}

/**
 * The most sessions each lane opens: TRIBUTARY_ENGINE_SESSIONS (4) for the platform's short work and for users'
 * queries, TRIBUTARY_ENGINE_LOAD_SESSIONS (8) for streaming loads — a load waiting for a session reads nothing
 * from its source meanwhile, so there are more of these than activity slots.
 */
export function laneSizes(env: NodeJS.ProcessEnv = process.env): { main: number; load: number; readonly: number } {
  const count = (v: string | undefined, fallback: number) => (Number.isInteger(Number(v)) && Number(v) > 0 ? Number(v) : fallback);
  const short = count(env.TRIBUTARY_ENGINE_SESSIONS, 4);
  return { main: short, load: count(env.TRIBUTARY_ENGINE_LOAD_SESSIONS, 8), readonly: short };
}

/**
 * The engine process's libuv pool: chDB runs each statement on a pool thread for as long as it takes, so the
 * pool holds one thread for every session the lanes may open (and a spare), or a statement would wait in
 * libuv's queue behind the loads whatever its lane.
 */
export function engineThreadPoolSize(env: NodeJS.ProcessEnv = process.env): number {
  const sizes = laneSizes(env);
  return sizes.main + sizes.load + sizes.readonly + 1;
}
