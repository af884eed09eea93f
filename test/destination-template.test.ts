import { changeContext, renderChange, renderErrorMessage, SAMPLE_CONTEXT, templateError } from '../destinations/template';
import type { ChangeRow } from '../warehouse/change-log';

const change: ChangeRow = {
  batch: '12',
  seq: 3,
  source_id: '5b0b5a52-6f2c-4d0e-9a43-1f7e4b6f1a10',
  table: 'shop_orders',
  op: 'update',
  key: '{"id":42}',
  row: '{"id":42,"status":"paid","amount":150.5,"customer":{"email":"a@example.com"},"tags":["vip"]}',
  old_row: '{"id":42,"status":"open","amount":150.5,"customer":{"email":"a@example.com"},"tags":[]}',
  version: '9007199254740993',
  landed_at: '2026-03-01 10:00:00.123456',
};

describe('destination body templates (json-e)', () => {
  test('a change-log row becomes the context: key, row and old_row parsed, the id stable per (table, key, version, op)', () => {
    const ctx = changeContext(change);
    expect(ctx).toMatchObject({ table: 'shop_orders', op: 'update', key: { id: 42 }, row: { status: 'paid', amount: 150.5 }, old_row: { status: 'open' }, version: '9007199254740993' });
    expect(ctx.id).toMatch(/^chg_[0-9a-f]{32}$/);
    expect(changeContext({ ...change, batch: '99', seq: 1 }).id).toBe(ctx.id);
    expect(changeContext({ ...change, op: 'delete' }).id).not.toBe(ctx.id);
    expect(changeContext({ ...change, old_row: null }).old_row).toBeNull();
  });

  test('a whole-value placeholder keeps its type, strings interpolate, operators combine', () => {
    const body = {
      text: 'Order ${row.id} paid by ${row.customer.email}',
      amount: { $eval: 'row.amount' },
      tags: { $eval: 'row.tags' },
      big: { $if: 'row.amount > 100', then: true, else: false },
      was: { $eval: 'old_row.status' },
      op: '${op}',
      constant: [1, 'two', null],
    };
    expect(renderChange(body, changeContext(change))).toEqual({
      text: 'Order 42 paid by a@example.com',
      amount: 150.5,
      tags: ['vip'],
      big: true,
      was: 'open',
      op: 'update',
      constant: [1, 'two', null],
    });
  });

  test('no template: the body is the change itself; $fromNow counts from the change, so it renders the same every time', () => {
    const ctx = changeContext(change);
    expect(renderChange(undefined, ctx)).toBe(ctx);
    expect(renderChange({ at: { $fromNow: '1 hour' } }, ctx)).toEqual({ at: '2026-03-01T11:00:00.123Z' });
  });

  test.each([
    [{ text: 'Order ${row.id paid' }, 'body.text', /unexpected "paid"/],
    [{ text: 'Order ${row.id' }, 'body.text', /unterminated/],
    [{ blocks: [{ text: 'x ${row.amount +}' }] }, 'body.blocks[0].text', /incomplete/],
    [{ a: { $if: 'row.amount >', then: 1 } }, 'body.a["$if"]', /ends too early/],
    // The branch not taken with the sample change is checked too.
    [{ a: { $if: 'true', then: 1, else: '${)}' } }, 'body.a.else', /syntax error/],
    [{ a: { $evl: 'row.amount' } }, 'body.a["$evl"]', /unknown json-e operator \$evl: did you mean \$eval\?/],
    [{ a: { $eval: 'rows.id' } }, 'body.a', /unknown context value rows/],
    [{ a: { $eval: 'row.id', extra: 1 } }, 'body.a', /undefined properties: extra/],
    [{ a: { $eval: 'row.id', $if: 'true' } }, 'body.a', /only one json-e operator/],
    [{ '${row.id': 1 }, 'body["${row.id"]', /unterminated/],
    [{ a: { $match: { 'row.x ==': 1 } } }, 'body.a["$match"]["row.x =="]', /syntax error/],
  ])('a bad template %j is refused at %s', (template, path, message) => {
    const problem = templateError(template);
    expect(problem).toMatchObject({ path });
    expect(problem!.message).toMatch(message);
  });

  test('what only the data decides is not refused at create time, and fails at render naming the path', () => {
    // The sample change has no columns: a column reference or comparison is the data's business.
    const template = { text: 'Order ${row.id}', n: { $eval: 'row.amount + 1' }, ok: { $if: 'row.amount > 100', then: 1 } };
    expect(templateError(template)).toBeNull();
    expect(templateError(undefined)).toBeNull();
    expect(templateError('plain string')).toBeNull();
    expect(templateError({ literal: '$${not interpolated}', $$eval: 'a literal key' })).toBeNull();
    expect(renderChange({ literal: '$${not interpolated}', $$eval: 'x' }, SAMPLE_CONTEXT)).toEqual({ literal: '${not interpolated}', $eval: 'x' });
    let err: unknown;
    try {
      renderChange({ text: 'Order ${row.nope.x}' }, changeContext(change));
    } catch (e) {
      err = e;
    }
    expect(renderErrorMessage(err)).toMatch(/^body\.text: object has no property "nope"/);
  });
});
