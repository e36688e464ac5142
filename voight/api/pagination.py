"""Cursor pagination that stays exact while rows keep arriving.

DRF's CursorPagination keys on the first ordering field and an offset among equal values, so
a row inserted with the same `started_at` as the cursor shifts the offset and a page repeats
or skips a row. Here the cursor holds the whole key — the time field and a unique tiebreak
(the primary key) — and the next page is "strictly after this key" (a keyset, or seek,
query). Rows inserted while a client pages either sort before its cursor (and are not seen
this pass) or after it (and are seen once); no existing row is ever returned twice or lost.
"""

from __future__ import annotations

import base64
import binascii
import json

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Q
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.utils.urls import replace_query_param


class KeysetPagination(CursorPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500
    # (time field, unique tiebreak), both in the same direction.
    ordering: tuple[str, ...] = ("-started_at", "-pk")
    template = None
    invalid_cursor_message = "invalid cursor"

    def paginate_queryset(self, queryset, request, view=None):
        self.request = request
        self.page_size = self.get_page_size(request)
        self.base_url = request.build_absolute_uri()
        self.model = queryset.model
        reverse, position = self.decode_cursor(request) or (False, None)
        ordering = self._reversed(self.ordering) if reverse else tuple(self.ordering)
        queryset = queryset.order_by(*ordering)
        if position is not None:
            queryset = queryset.filter(self._after(position, ordering))
        rows = list(queryset[: self.page_size + 1])
        more = len(rows) > self.page_size
        self.page = rows[: self.page_size]
        if reverse:
            self.page.reverse()
            self.has_next, self.has_previous = True, more
        else:
            self.has_next, self.has_previous = more, position is not None
        if not self.page:
            self.has_next = self.has_previous = False
        return self.page

    # The cursor: urlsafe base64 of {"r": reverse, "p": [key values]}.

    def get_next_link(self):
        if not self.has_next:
            return None
        return self._link(False, self.page[-1])

    def get_previous_link(self):
        if not self.has_previous:
            return None
        return self._link(True, self.page[0])

    def _link(self, reverse: bool, row) -> str:
        values = [_encode(self._value(row, name)) for name in self._fields()]
        token = base64.urlsafe_b64encode(
            json.dumps({"r": int(reverse), "p": values}, separators=(",", ":")).encode()
        ).decode().rstrip("=")
        return replace_query_param(self.base_url, self.cursor_query_param, token)

    def decode_cursor(self, request):
        token = request.query_params.get(self.cursor_query_param)
        if token is None:
            return None
        try:
            data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
            values = data["p"]
            if not isinstance(values, list) or len(values) != len(self.ordering):
                raise ValueError("wrong key length")
            position = [
                self._field(name).to_python(value)
                for name, value in zip(self._fields(), values, strict=True)
            ]
            if any(value is None for value in position):
                raise ValueError("empty key")
            return bool(data.get("r")), position
        except (ValueError, TypeError, KeyError, binascii.Error, DjangoValidationError,
                UnicodeDecodeError, AttributeError) as exc:
            raise ValidationError({self.cursor_query_param: [self.invalid_cursor_message]}) from exc

    def _fields(self) -> list[str]:
        return [name.lstrip("-") for name in self.ordering]

    def _field(self, name: str):
        meta = self.model._meta
        return meta.pk if name == "pk" else meta.get_field(name)

    def _value(self, row, name: str):
        return row.pk if name == "pk" else getattr(row, self._field(name).attname)

    @staticmethod
    def _reversed(ordering) -> tuple[str, ...]:
        return tuple(name[1:] if name.startswith("-") else f"-{name}" for name in ordering)

    @staticmethod
    def _after(position: list, ordering: tuple[str, ...]) -> Q:
        """Rows strictly after `position` in `ordering`: (a > x) or (a = x and b > y) ..."""
        condition = Q()
        for index, name in enumerate(ordering):
            field = name.lstrip("-")
            lookup = "lt" if name.startswith("-") else "gt"
            equal = {other.lstrip("-"): position[i] for i, other in enumerate(ordering[:index])}
            condition |= Q(**equal, **{f"{field}__{lookup}": position[index]})
        return condition

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 1,
                                       "maximum": self.max_page_size}
                parameter["description"] = (
                    f"Rows per page (default {self.page_size}, at most {self.max_page_size})."
                )
        return parameters


def _encode(value):
    if value is None or isinstance(value, int | str):
        return value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


class SessionPagination(KeysetPagination):
    ordering = ("-started_at", "-pk")


class TracePagination(KeysetPagination):
    ordering = ("-started_at", "-pk")


class EventPagination(KeysetPagination):
    ordering = ("-ts", "-pk")
    # Payloads can be large; keep a page bounded.
    max_page_size = 200


class SignalPagination(KeysetPagination):
    ordering = ("-fired_at", "-pk")


class AgentPagination(KeysetPagination):
    ordering = ("slug", "pk")
