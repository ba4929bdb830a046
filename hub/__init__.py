"""The Genius hub: ingest, idempotent storage, per-customer context, anticipation, data rights, operator API."""
