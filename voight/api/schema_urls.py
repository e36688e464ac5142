"""The URLconf the OpenAPI schema is generated from: `/v1/me/*` and the schema-only
stand-ins of the ingest views. `manage.py spectacular --urlconf voight.api.schema_urls`
writes the same schema as `GET /v1/schema`."""

from django.urls import include, path

urlpatterns = [
    path("v1/me/", include("voight.api.urls")),
    path("v1/", include("voight.api.ingest_schema")),
]
