"""What a view leaves of a request body is read and discarded before the answer, within
bounds (voight/unread_body.py); the real servers and clients are in
tests/ingest/test_oversized_bodies.py."""

from __future__ import annotations

import io
import time

from voight.unread_body import DrainUnreadBody, _CountingInput, drain

MIB = 1024 * 1024


class SlowStream(io.BytesIO):
    def read(self, size=-1, /):
        time.sleep(0.02)
        return super().read(size)


def app_reading(n: int):
    def app(environ, start_response):
        environ["wsgi.input"].read(n)
        start_response("413 Request Entity Too Large", [("Content-Type", "application/json")])
        return [b'{"error": "too large"}']
    return app


def test_the_rest_of_a_declared_body_is_read_after_the_application_answers():
    stream = io.BytesIO(b"x" * (3 * MIB) + b"NEXT REQUEST")
    environ = {"CONTENT_LENGTH": str(3 * MIB), "wsgi.input": stream}
    result = DrainUnreadBody(app_reading(1000))(environ, lambda status, headers: None)
    assert result == [b'{"error": "too large"}']
    assert stream.read() == b"NEXT REQUEST"  # exactly the declared body, not a byte more


def test_a_rest_over_the_cap_is_not_read_at_all():
    stream = _CountingInput(io.BytesIO(b"x" * (3 * MIB)))
    assert drain({"CONTENT_LENGTH": str(3 * MIB)}, stream, 2 * MIB, 10) == 0
    assert stream.stream.tell() == 0


def test_a_chunked_body_is_read_to_its_end_only_when_the_server_ends_the_input():
    stream = _CountingInput(io.BytesIO(b"x" * MIB))
    assert drain({}, stream, 64 * MIB, 10) == 0  # the input might never end: don't block
    assert drain({"wsgi.input_terminated": True}, stream, 64 * MIB, 10) == MIB


def test_a_chunked_body_stops_at_the_cap():
    stream = _CountingInput(io.BytesIO(b"x" * (3 * MIB)))
    assert drain({"wsgi.input_terminated": True}, stream, MIB, 10) == MIB


def test_a_body_the_application_read_whole_costs_nothing():
    stream = _CountingInput(io.BytesIO(b"x" * 5000))
    stream.read(5000)
    assert drain({"CONTENT_LENGTH": "5000"}, stream, MIB, 10) == 0


def test_a_slow_client_is_given_up_on_at_the_deadline():
    stream = _CountingInput(SlowStream(b"x" * (100 * 64 * 1024)))  # 100 reads, 2 s in all
    discarded = drain({"CONTENT_LENGTH": str(100 * 64 * 1024)}, stream, 64 * MIB, 0.1)
    assert 0 < discarded < 100 * 64 * 1024
