"""Settings of the servers the benchmarks start: the product's own, plus the bench URLconf.

Only the URLconf differs, so the bare reference view runs on the same server, middleware and
database settings as the endpoint it is compared with, and never ships in the product.
"""

from voight.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
