/**
 * stripe-mock, Stripe's own API mock, which the tests run: pinned, because its embedded OpenAPI spec is also
 * what connectors/stripe/columns.generated.ts is generated from, and the client sends that spec's API version.
 */
export const STRIPE_MOCK_MODULE = 'github.com/stripe/stripe-mock@v0.203.0';
