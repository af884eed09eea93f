import type pg from 'pg';

/**
 * The design.md `orders` table (or one shaped like it) as the incremental, CDC and lag benchmarks use it: `rows` rows generated on the
 * server (about 8 % NULL emails, six statuses, small jsonb objects), the same on every run.
 */
export async function createOrders(db: pg.Client, rows: number, table = 'orders'): Promise<void> {
  await db.query(`CREATE TABLE ${table} (id bigserial primary key, customer_id bigint not null,
      created_at timestamptz not null, updated_at timestamptz not null, email text,
      amount numeric(12,2), status text, metadata jsonb, is_paid boolean)`);
  await db.query(`INSERT INTO ${table} (customer_id, created_at, updated_at, email, amount, status, metadata, is_paid)
      SELECT g % 50000, TIMESTAMPTZ '2023-01-01' + g * INTERVAL '40 seconds', TIMESTAMPTZ '2023-01-01' + g * INTERVAL '40 seconds' + INTERVAL '1 day',
             CASE WHEN g % 12 = 0 THEN NULL ELSE 'user' || g || '@example.com' END, (g % 100000) / 100.0,
             (ARRAY['new','paid','shipped','delivered','refunded','cancelled'])[1 + g % 6],
             jsonb_build_object('source', 'web', 'items', g % 7, 'campaign', 'c' || (g % 40)), g % 3 = 0
        FROM generate_series(1, ${rows}) g`);
}
