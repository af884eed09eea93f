/**
 * The 15 Stripe tables of seed 003: where each is listed, which object type it holds, which events carry
 * its changes, and which restricted-key permission reads it.
 *
 * Events are listed by name, not by the seed's prefixes: Stripe's webhook endpoints accept only concrete
 * event names (or "*"), disputes arrive as `charge.dispute.*`, refunds also as `charge.refund.updated`, and
 * the seed's `transfer.*` / `billing.*` carry transfers and billing objects, not balance transactions.
 * An event applies to the table of its `data.object.object`.
 */
export interface StripeTable {
  name: string;
  /** `object` of the Stripe objects it holds. */
  objectType: string;
  /** List path. Nested tables are listed per customer: `/v1/customers/{customer}/…`. */
  path: string;
  nested?: boolean;
  /** The creation-time cursor (InvoiceItem calls it `date`). */
  cursorField: 'created' | 'date';
  /** Extra list parameters: subscriptions are listed without their default "not canceled" filter. */
  listParams?: Record<string, string>;
  /** Events whose `data.object` is this object type: they carry its creates, updates and deletes. */
  events: string[];
  /** Events that mean the object is gone (`customer.subscription.deleted` only ends a subscription: it stays, canceled). */
  deleteEvents: string[];
  /** The restricted-key permission that reads it (seed 003's table). */
  permission: string;
}

const t = (x: StripeTable) => x;

export const STRIPE_TABLES: StripeTable[] = [
  t({ name: 'Account', objectType: 'account', path: '/v1/accounts', cursorField: 'created', events: ['account.updated'], deleteEvents: [], permission: 'Read in the Connect section' }),
  t({ name: 'BalanceTransaction', objectType: 'balance_transaction', path: '/v1/balance_transactions', cursorField: 'created', events: [], deleteEvents: [], permission: 'Read on Balance transaction sources (Core)' }),
  t({
    name: 'Charge', objectType: 'charge', path: '/v1/charges', cursorField: 'created',
    events: ['charge.captured', 'charge.expired', 'charge.failed', 'charge.pending', 'charge.refunded', 'charge.succeeded', 'charge.updated'],
    deleteEvents: [], permission: 'Read on Charges and refunds (Core)',
  }),
  t({ name: 'CreditNote', objectType: 'credit_note', path: '/v1/credit_notes', cursorField: 'created', events: ['credit_note.created', 'credit_note.updated', 'credit_note.voided'], deleteEvents: [], permission: 'Read on Credit notes (Billing)' }),
  t({ name: 'Customer', objectType: 'customer', path: '/v1/customers', cursorField: 'created', events: ['customer.created', 'customer.updated', 'customer.deleted'], deleteEvents: ['customer.deleted'], permission: 'Read on Customers (Core)' }),
  t({ name: 'CustomerBalanceTransaction', objectType: 'customer_balance_transaction', path: '/v1/customers/{customer}/balance_transactions', nested: true, cursorField: 'created', events: [], deleteEvents: [], permission: 'Read on Customers (Core)' }),
  t({
    name: 'CustomerPaymentMethod', objectType: 'payment_method', path: '/v1/customers/{customer}/payment_methods', nested: true, cursorField: 'created',
    events: ['payment_method.attached', 'payment_method.automatically_updated', 'payment_method.detached', 'payment_method.updated'],
    deleteEvents: [], permission: 'Read on Payment methods (Core)',
  }),
  t({
    name: 'Dispute', objectType: 'dispute', path: '/v1/disputes', cursorField: 'created',
    events: ['charge.dispute.created', 'charge.dispute.updated', 'charge.dispute.closed', 'charge.dispute.funds_reinstated', 'charge.dispute.funds_withdrawn'],
    deleteEvents: [], permission: 'Read on Disputes (Core)',
  }),
  t({
    name: 'Invoice', objectType: 'invoice', path: '/v1/invoices', cursorField: 'created',
    events: [
      'invoice.created', 'invoice.deleted', 'invoice.finalization_failed', 'invoice.finalized', 'invoice.marked_uncollectible', 'invoice.overdue',
      'invoice.overpaid', 'invoice.paid', 'invoice.payment_action_required', 'invoice.payment_attempt_required', 'invoice.payment_failed',
      'invoice.payment_succeeded', 'invoice.sent', 'invoice.updated', 'invoice.voided', 'invoice.will_be_due',
    ],
    deleteEvents: ['invoice.deleted'], permission: 'Read on Invoices (Billing)',
  }),
  t({ name: 'InvoiceItem', objectType: 'invoiceitem', path: '/v1/invoiceitems', cursorField: 'date', events: ['invoiceitem.created', 'invoiceitem.deleted'], deleteEvents: ['invoiceitem.deleted'], permission: 'Read on Invoices (Billing)' }),
  t({
    name: 'Payout', objectType: 'payout', path: '/v1/payouts', cursorField: 'created',
    events: ['payout.canceled', 'payout.created', 'payout.failed', 'payout.paid', 'payout.reconciliation_completed', 'payout.updated'],
    deleteEvents: [], permission: 'Read on Payouts (Core)',
  }),
  t({ name: 'Price', objectType: 'price', path: '/v1/prices', cursorField: 'created', events: ['price.created', 'price.updated', 'price.deleted'], deleteEvents: ['price.deleted'], permission: 'Read on Prices (Billing)' }),
  t({ name: 'Product', objectType: 'product', path: '/v1/products', cursorField: 'created', events: ['product.created', 'product.updated', 'product.deleted'], deleteEvents: ['product.deleted'], permission: 'Read on Products (Core)' }),
  t({ name: 'Refund', objectType: 'refund', path: '/v1/refunds', cursorField: 'created', events: ['refund.created', 'refund.failed', 'refund.updated', 'charge.refund.updated'], deleteEvents: [], permission: 'Read on Charges and refunds (Core)' }),
  t({
    name: 'Subscription', objectType: 'subscription', path: '/v1/subscriptions', cursorField: 'created', listParams: { status: 'all' },
    events: [
      'customer.subscription.created', 'customer.subscription.updated', 'customer.subscription.deleted', 'customer.subscription.paused',
      'customer.subscription.resumed', 'customer.subscription.pending_update_applied', 'customer.subscription.pending_update_expired',
      'customer.subscription.trial_will_end',
    ],
    deleteEvents: [], permission: 'Read on Subscriptions (Billing)',
  }),
];

const byName = new Map(STRIPE_TABLES.map((x) => [x.name, x]));
const byObject = new Map(STRIPE_TABLES.map((x) => [x.objectType, x]));

export function stripeTable(name: string): StripeTable | undefined {
  return byName.get(name);
}

/** The table an object of this type belongs to (payment methods: CustomerPaymentMethod). */
export function tableForObject(objectType: string): StripeTable | undefined {
  return byObject.get(objectType);
}

