/** A process's memory, read from /proc, for the benchmarks (`npm run bench`, `bench:incremental`). */
import { readProc } from '../test/support/platform';

/** VmRSS = RssAnon (heaps: V8, chDB's allocator, buffers) + RssFile (mapped code: libchdb, node, wasm) + RssShmem. */
export function memoryKb(pid: number): { rss: number; hwm: number; anon: number; file: number } | undefined {
  const status = readProc(pid, 'status');
  if (!status) return undefined;
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rss: kb('VmRSS'), hwm: kb('VmHWM'), anon: kb('RssAnon'), file: kb('RssFile') };
}

/** Samples a process's memory every `everyMs` until stopped: its peak RSS, peak anonymous memory, code at the peak. */
export function sampleRss(pid: number, everyMs: number) {
  let peakKb = 0;
  let peakAnonKb = 0;
  let fileKbAtPeak = 0;
  let samples = 0;
  const tick = () => {
    const m = memoryKb(pid);
    if (!m) return;
    samples++;
    if (m.rss > peakKb) {
      peakKb = m.rss;
      fileKbAtPeak = m.file;
    }
    if (m.anon > peakAnonKb) peakAnonKb = m.anon;
  };
  tick();
  const timer = setInterval(tick, everyMs);
  return {
    stop() {
      clearInterval(timer);
      tick();
      return { peakKb, peakAnonKb, fileKbAtPeak, samples };
    },
  };
}

/** A process's (or, with `tid`, one of its threads') CPU time so far (user + system), in seconds, from /proc; undefined once it is gone. */
export function cpuSeconds(pid: number, tid?: number): number | undefined {
  const stat = readProc(pid, tid === undefined ? 'stat' : `task/${tid}/stat`);
  if (!stat) return undefined;
  // The fields after the command name (which may hold spaces, inside parentheses): utime and stime are 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}
/** USER_HZ: 100 on every Linux this runs on. */
const CLOCK_TICKS = 100;
