import { kitColumn, type ColumnKind, type KitColumn } from '../kit';
import { OBJECT_COLUMNS } from './columns.generated';

/**
 * Stripe objects as warehouse rows, typed by the kit (connectors/kit/columns.ts). Columns are the object's
 * top-level properties at the pinned API version, with kinds from Stripe's OpenAPI spec (amounts are `int`, in
 * the currency's minor unit); every column but `id` is Nullable, because Stripe leaves fields out by object
 * subtype (a card payment method has no `sepa_debit`).
 */
export { objectRow, rowColumns } from '../kit';

export function objectColumns(objectType: string): KitColumn[] {
  const spec = OBJECT_COLUMNS[objectType];
  if (!spec) throw new Error(`no columns for Stripe object "${objectType}"`);
  return spec.split(' ').map((entry) => {
    const [name, kind] = entry.split(':');
    return kitColumn(name, kind as ColumnKind, { nullable: name !== 'id' });
  });
}
