"""The product's URLs plus the bench's reference views (`/bench/...`)."""

import json

from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt
from psycopg.types.json import Jsonb

BARE_TABLE = "bench_bare_hook"
BARE_DDL = (
    f"CREATE TABLE IF NOT EXISTS {BARE_TABLE} (id bigserial PRIMARY KEY, "
    "received_at timestamptz NOT NULL DEFAULT now(), payload jsonb NOT NULL)"
)


def ping(request):
    return HttpResponse("ok")


@csrf_exempt
def bare_insert(request):
    """The floor for one hook request on this server: parse the JSON, store it as one row."""
    body = json.loads(request.body)
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {BARE_TABLE} (payload) VALUES (%s)", [Jsonb(body)])
    return HttpResponse(status=200)


@csrf_exempt
def keyed_insert(request):
    """The floor for any authenticated hook: the bare insert behind the hook's own key check
    and rate limit (`ingest.access.ingest_key`), with nothing rolled up."""
    from ingest.access import ingest_key

    key = ingest_key(request)
    if isinstance(key, JsonResponse):
        return key
    return bare_insert(request)


urlpatterns = [
    path("bench/ping", ping),
    path("bench/bare-insert", bare_insert),
    path("bench/keyed-insert", keyed_insert),
    path("", include("voight.urls")),
]
