"""OpenAPI generation details shared by `/v1/me` and the ingest schema: the bearer key as a
security scheme, the error answers every operation can give, and CSV as a documented string."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.views import SpectacularAPIView
from rest_framework import serializers


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "voight.auth.ApiKeyAuthentication"
    name = "bearerKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": (
                "A Voight API key (`vk_…`). `/v1/me` needs the `read` scope (writes: `write`); "
                "ingest needs `ingest`. A key bound to a user sees that user's teams."
            ),
        }


class ErrorSerializer(serializers.Serializer):
    error = serializers.CharField(help_text="What went wrong, in words.")
    retry_after = serializers.IntegerField(
        required=False, help_text="With 429: seconds until the rate-limit window resets."
    )

    def get_fields(self):
        # `fields` names a Serializer attribute, so it cannot be declared as a class attribute.
        fields = super().get_fields()
        fields["fields"] = serializers.DictField(
            required=False, help_text="Per-parameter problems, when the request did not validate."
        )
        return fields


ERROR_DESCRIPTIONS = {
    "400": "Invalid parameters or body.",
    "401": "No API key, or an invalid or revoked one.",
    "403": "The key lacks the scope, or the user is not an admin of the team.",
    "404": "No such object among your teams' objects.",
    "429": "Rate limit of this key exceeded; see the `Retry-After` header.",
}

CSV_SCHEMA = {"type": "string", "description": "CSV with a header row (see the operation)."}


class VoightAutoSchema(AutoSchema):
    """Adds the JSON error answers, and CSV only where a list streams it."""

    def _offers_csv(self) -> bool:
        return self.method == "GET" and self._is_list_view()

    def map_renderers(self, attribute):
        values = super().map_renderers(attribute)
        if not self._offers_csv():
            values = [value for value in values if value not in ("text/csv", "csv")]
        return values

    def _error_codes(self) -> list[str]:
        codes = ["400", "401", "403", "429"]
        if "{" in self.path:
            codes.append("404")
        return codes

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for response in responses.values():
            content = response.get("content", {})
            if "text/csv" in content:
                content["text/csv"] = {"schema": CSV_SCHEMA}
        for code in self._error_codes():
            if code not in responses:
                error = self._get_response_for_code(
                    ErrorSerializer, code, media_types=["application/json"], direction=direction
                )
                error["description"] = ERROR_DESCRIPTIONS[code]
                responses[code] = error
        if "429" in responses:
            responses["429"].setdefault("headers", {})["Retry-After"] = {
                "schema": {"type": "integer"},
                "description": "Seconds until the rate-limit window resets.",
            }
        return responses


class SchemaView(SpectacularAPIView):
    """`GET /v1/schema`: OpenAPI 3 of `/v1/me/*` and, through schema-only stand-ins, of the
    plain Django ingest views (which DRF's generator cannot see). YAML by default;
    `?format=json` or `Accept: application/vnd.oai.openapi+json` for JSON."""

    urlconf = "voight.api.schema_urls"
