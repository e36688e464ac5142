"""The REST API for integrations: `/v1/me/...` (SPEC 8), its schema, CSV and rate limits.

Kept import-free: `ingest.access` imports `voight.api.throttling` on the hot ingest path.
"""
