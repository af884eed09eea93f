import fc from 'fast-check';
import { cutAtRowEnds } from '../connectors/postgres/read';

async function* chunked(data: Buffer, sizes: number[]): AsyncGenerator<Buffer> {
  let at = 0;
  for (const n of sizes) {
    if (at >= data.length) break;
    yield data.subarray(at, at + n);
    at += n;
  }
  if (at < data.length) yield data.subarray(at);
}

async function cut(data: Buffer, sizes: number[], batchBytes: number, runOf?: (row: Buffer) => string): Promise<string[]> {
  const out: string[] = [];
  for await (const b of cutAtRowEnds(chunked(data, sizes), batchBytes, runOf)) out.push(b.toString('utf8'));
  return out;
}

describe('batches are cut at row ends, independently of network chunking', () => {
  // A retried read must reproduce the same batches (their deduplication tokens depend on them).
  test('any chunking of the same rows gives the same batches, each ending at a row end', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.string({ unit: fc.constantFrom('a', 'b', '\t', 'é'), maxLength: 40 }), { minLength: 1, maxLength: 200 }),
        fc.array(fc.integer({ min: 1, max: 3000 }), { maxLength: 60 }),
        fc.integer({ min: 1, max: 600 }),
        async (rows, sizes, batchBytes) => {
          const data = Buffer.from(rows.map((r) => `${r}\n`).join(''));
          const expected = await cut(data, [data.length], batchBytes);
          const actual = await cut(data, sizes, batchBytes);
          expect(actual).toEqual(expected);
          expect(actual.join('')).toBe(data.toString('utf8'));
          for (const b of actual) expect(b.endsWith('\n')).toBe(true);
          // No batch holds a row end past the first one at or after batchBytes.
          for (const b of actual.slice(0, -1)) expect(Buffer.byteLength(b)).toBe(Buffer.from(b).indexOf(10, batchBytes - 1) + 1);
        },
      ),
      { numRuns: 300 },
    );
  });

  test('one large network chunk is cut into many batches, not loaded whole', async () => {
    const data = Buffer.from(Array.from({ length: 1000 }, (_, i) => `row ${i}\n`).join(''));
    const batches = await cut(data, [data.length], 100);
    expect(batches.length).toBeGreaterThan(60);
    expect(Math.max(...batches.map((b) => b.length))).toBeLessThan(100 + 10);
  });

  // Append without a key resumes "past the last cursor value": a run of equal values must never span two batches.
  test('with runs: same batches for any chunking, no run split across batches, each batch full but for its run', async () => {
    const runOf = (row: Buffer) => row.toString('utf8').split('\t')[0];
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 8 }), fc.integer({ min: 1, max: 12 }), fc.string({ unit: fc.constantFrom('a', 'é'), maxLength: 30 })), {
          minLength: 1,
          maxLength: 60,
        }),
        fc.array(fc.integer({ min: 1, max: 500 }), { maxLength: 60 }),
        fc.integer({ min: 1, max: 400 }),
        async (runs, sizes, batchBytes) => {
          // Runs in ascending order, as the read orders them.
          let value = 0;
          const rows = runs.flatMap(([step, count, text]) => ((value += step), Array.from({ length: count }, (_, i) => `${value}\t${text}${i}\n`)));
          const data = Buffer.from(rows.join(''));
          const expected = await cut(data, [data.length], batchBytes, runOf);
          const actual = await cut(data, sizes, batchBytes, runOf);
          expect(actual).toEqual(expected);
          expect(actual.join('')).toBe(data.toString('utf8'));
          const runsOf = (b: string) => b.split('\n').filter(Boolean).map((l) => l.split('\t')[0]);
          for (let i = 0; i + 1 < actual.length; i++) {
            const [here, next] = [runsOf(actual[i]), runsOf(actual[i + 1])];
            expect(next[0]).not.toBe(here[here.length - 1]);
            // Cut at the first row end past batchBytes, or later only to finish the last row's run.
            const run = here[here.length - 1];
            const firstOfRun = actual[i].split('\n').filter(Boolean).findIndex((l) => l.split('\t')[0] === run);
            const beforeRun = actual[i].split('\n').slice(0, firstOfRun).map((l) => l + '\n').join('');
            expect(Buffer.byteLength(beforeRun)).toBeLessThan(batchBytes);
            expect(Buffer.byteLength(actual[i])).toBeGreaterThanOrEqual(batchBytes);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
