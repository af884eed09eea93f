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

async function cut(data: Buffer, sizes: number[], batchBytes: number): Promise<string[]> {
  const out: string[] = [];
  for await (const b of cutAtRowEnds(chunked(data, sizes), batchBytes)) out.push(b.toString('utf8'));
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
});
