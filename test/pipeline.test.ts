import { pipelinedInOrder } from '../activities/pipeline';

/** A gate a work waits on until the test opens it. */
function gate() {
  let open!: () => void;
  let fail!: (err: Error) => void;
  const promise = new Promise<void>((resolve, reject) => {
    open = resolve;
    fail = reject;
  });
  return { promise, open, fail };
}

async function* items(n: number, read: number[]) {
  for (let i = 0; i < n; i++) {
    read.push(i);
    yield i;
  }
}

const settle = () => new Promise((r) => setImmediate(r));

describe('pipelinedInOrder', () => {
  test('runs up to inFlight works at once and calls done in the source order, each after its own work', async () => {
    const gates = [0, 1, 2, 3, 4].map(() => gate());
    const started: number[] = [];
    const finished: number[] = [];
    const done: number[] = [];
    const read: number[] = [];
    const run = pipelinedInOrder(
      items(5, read),
      async (i) => {
        started.push(i);
        await gates[i].promise;
        finished.push(i);
      },
      (i) => {
        // An item is done only once every earlier one is, and its own work has ended.
        expect(done).toEqual([...Array(i).keys()]);
        expect(finished).toContain(i);
        done.push(i);
      },
      2,
    );
    await settle();
    // Two works in flight; the next item read meanwhile (at most inFlight + 1 in memory), not started.
    expect(started).toEqual([0, 1]);
    expect(read).toEqual([0, 1, 2]);
    // The second ends first: nothing is done until the first has.
    gates[1].open();
    await settle();
    expect(done).toEqual([]);
    expect(started).toEqual([0, 1]);
    gates[0].open();
    await settle();
    expect(done).toEqual([0, 1]);
    expect(started).toEqual([0, 1, 2, 3]);
    for (const g of gates.slice(2)) g.open();
    await run;
    expect(done).toEqual([0, 1, 2, 3, 4]);
  });

  test('a work that ends is done while the next item is still awaited (a stalled source holds back no position)', async () => {
    const stalled = gate();
    const done: number[] = [];
    async function* source() {
      yield 0;
      await stalled.promise;
      yield 1;
    }
    const run = pipelinedInOrder(source(), async () => undefined, (i) => void done.push(i), 2);
    for (let i = 0; i < 5 && !done.length; i++) await settle();
    expect(done).toEqual([0]);
    stalled.open();
    await run;
    expect(done).toEqual([0, 1]);
  });

  test('with one in flight it is the plain pipeline: a work at a time, the next item read meanwhile', async () => {
    let running = 0;
    let most = 0;
    const done: number[] = [];
    await pipelinedInOrder(
      items(6, []),
      async () => {
        most = Math.max(most, ++running);
        await settle();
        running--;
      },
      (i) => void done.push(i),
      1,
    );
    expect(most).toBe(1);
    expect(done).toEqual([0, 1, 2, 3, 4, 5]);
  });

  test('a failed work stops the reading, lets the work still in flight end, and skips every later done', async () => {
    const gates = [0, 1, 2].map(() => gate());
    const done: number[] = [];
    const read: number[] = [];
    let returned = false;
    async function* source() {
      try {
        yield* items(10, read);
      } finally {
        returned = true;
      }
    }
    let secondEnded = false;
    const run = pipelinedInOrder(
      source(),
      async (i) => {
        await gates[i].promise;
        if (i === 1) secondEnded = true;
      },
      (i) => void done.push(i),
      2,
    );
    await settle();
    gates[0].fail(new Error('insert refused'));
    let settled = false;
    const outcome = run.then(
      () => 'resolved',
      (err: Error) => err.message,
    );
    void outcome.then(() => (settled = true));
    await settle();
    // Not thrown while the second work is still running.
    expect(settled).toBe(false);
    gates[1].open();
    expect(await outcome).toBe('insert refused');
    expect(secondEnded).toBe(true);
    expect(done).toEqual([]);
    expect(returned).toBe(true);
    expect(read.length).toBeLessThanOrEqual(3);
  });

  test('a failed read is thrown once the works in flight have settled; their positions are not recorded', async () => {
    const done: number[] = [];
    const ended: number[] = [];
    async function* source() {
      yield 0;
      yield 1;
      throw new Error('page refused');
    }
    await expect(
      pipelinedInOrder(source(), async (i) => settle().then(() => void ended.push(i)), (i) => void done.push(i), 2),
    ).rejects.toThrow('page refused');
    // Item 0 was done before the read failed; item 1's work ended but nothing records it as done.
    expect(done).toEqual([0]);
    expect(ended).toEqual([0, 1]);
  });
});
