"""Voight's benchmark suite: `python -m bench [--quick] [--only NAME]`.

Every figure is reported beside a reference measured in the same run on the same machine
(COPY for batch ingest, a bare insert view for the hook endpoint, ...), because absolute
times on a shared two-core machine are noise. Nothing here is imported by the product.
"""
