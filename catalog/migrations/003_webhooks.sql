-- One webhook endpoint per source that pushes changes (Stripe): where it points, and the secret that verifies it.
CREATE TABLE webhooks (
  source_id         uuid PRIMARY KEY REFERENCES sources(id) ON DELETE CASCADE,
  url               text NOT NULL,
  -- The endpoint Tributary registered at the source (deleted with the source); NULL when created by hand.
  endpoint_id       text,
  enabled_events    jsonb,
  -- AES-256-GCM envelope of the signing secret; NULL keeps the intake disabled.
  signing_secret    text,
  events_applied    bigint NOT NULL DEFAULT 0,
  last_event_at     timestamptz,
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now()
);
