"""A minimal HTTP/1.1 client on raw sockets, with one deadline for the whole exchange.

Why not urllib/http.client: `import urllib.request` alone costs ~28 ms and `http.client` pulls
in the email package; the hook pays import time on every Claude Code event. Plain `http://`
uses the C `_socket` module directly (the `socket` wrapper imports enum and selectors); `https://`
imports `socket` and `ssl` only when asked for.

Every request is `Connection: close`, so the answer is framed by Content-Length, chunked
encoding or end of stream.
"""

import _socket
import time

from voight.client import jsonlite


class TransportError(OSError):
    """No usable answer: DNS, connect, send or read failed, or the deadline passed."""


class Response:
    def __init__(self, status: int, headers: dict[str, str], body: bytes):
        self.status = status
        self.headers = headers  # lower-cased names
        self.body = body

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def json(self):
        try:
            return jsonlite.loads(self.body)
        except ValueError:
            return None


def split_url(url: str) -> tuple[str, str, int, str]:
    """`scheme://host[:port][/prefix]` → (scheme, host, port, prefix without trailing /)."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in ("http", "https"):
        raise TransportError(f"unsupported URL {url!r} (expected http:// or https://)")
    hostport, _, prefix = rest.partition("/")
    if hostport.startswith("["):  # IPv6 literal
        host, _, port_part = hostport[1:].partition("]")
        port_part = port_part.lstrip(":")
    else:
        host, _, port_part = hostport.partition(":")
    try:
        port = int(port_part) if port_part else (443 if scheme == "https" else 80)
    except ValueError:
        raise TransportError(f"bad port in URL {url!r}") from None
    return scheme, host, port, ("/" + prefix).rstrip("/")


def request(
    method: str,
    url: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 1.5,
) -> Response:
    """Send one request to `url` (full URL) and read the answer within `timeout` seconds."""
    return send(method, url, body, headers, timeout).answer()


class Exchange:
    """A request on the wire whose answer has not been read yet."""

    def __init__(self, sock: "_DeadlineSocket", deadline: float, label: str):
        self.sock = sock
        self.deadline = deadline
        self.label = label

    def answer(self) -> Response:
        try:
            return _read_response(self.sock, self.deadline)
        except OSError as exc:
            raise TransportError(f"{self.label}: {exc or type(exc).__name__}") from exc
        finally:
            self.sock.close()


def send(
    method: str,
    url: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 1.5,
) -> Exchange:
    """Connect and send one request; `Exchange.answer()` reads the answer by the same deadline."""
    deadline = time.monotonic() + timeout
    scheme, host, port, path = split_url(url)
    lines = [
        f"{method} {path or '/'} HTTP/1.1",
        f"Host: {host}:{port}" if ":" not in host else f"Host: [{host}]:{port}",
        "Connection: close",
        "User-Agent: voight-client/0.1",
        "Accept: application/json",
    ]
    for name, value in (headers or {}).items():
        # A key pasted with a newline must not smuggle extra headers.
        lines.append(f"{name}: {str(value).replace(chr(13), '').replace(chr(10), '')}")
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")
    sock = _connect(scheme, host, port, deadline)
    try:
        sock.sendall(head + body if body else head)
    except ConnectionError:
        # A server (or proxy) that refuses a body from its headers alone -- a 413 -- may
        # answer and close before reading it; its answer is often still readable.
        pass
    except OSError as exc:
        sock.close()
        raise TransportError(f"{method} {url}: {exc or type(exc).__name__}") from exc
    return Exchange(sock, deadline, f"{method} {url}")


def post_json(url: str, key: str, obj, timeout: float, method: str = "POST") -> Response:
    body = jsonlite.dumps(obj).encode()
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return request(method, url, body, headers, timeout)


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TransportError("timed out")
    return left


def _connect(scheme: str, host: str, port: int, deadline: float):
    if scheme == "https":
        import socket
        import ssl

        try:
            raw = socket.create_connection((host, port), timeout=_remaining(deadline))
            sock = ssl.create_default_context().wrap_socket(raw, server_hostname=host)
        except OSError as exc:
            raise TransportError(f"connect {host}:{port}: {exc}") from exc
        sock.settimeout(_remaining(deadline))
        return _DeadlineSocket(sock, deadline)
    try:
        # An ASCII host as bytes skips the idna codec import that a str host triggers.
        name = host.encode("ascii") if host.isascii() else host
        infos = _socket.getaddrinfo(name, port, 0, _socket.SOCK_STREAM)
    except OSError as exc:
        raise TransportError(f"resolve {host}: {exc}") from exc
    error: OSError = TransportError(f"no address for {host}")
    for family, kind, proto, _name, addr in infos:
        sock = _socket.socket(family, kind, proto)
        try:
            sock.settimeout(_remaining(deadline))
            sock.connect(addr)
            return _DeadlineSocket(sock, deadline)
        except OSError as exc:
            sock.close()
            error = exc
    raise TransportError(f"connect {host}:{port}: {error}") from error


class _DeadlineSocket:
    """Re-arms the socket timeout before each call so the total never exceeds the deadline."""

    def __init__(self, sock, deadline: float):
        self.sock = sock
        self.deadline = deadline

    def sendall(self, data: bytes) -> None:
        self.sock.settimeout(_remaining(self.deadline))
        self.sock.sendall(data)

    def recv(self, n: int) -> bytes:
        self.sock.settimeout(_remaining(self.deadline))
        return self.sock.recv(n)

    def close(self) -> None:
        self.sock.close()


def _read_response(sock: _DeadlineSocket, deadline: float) -> Response:
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise TransportError("connection closed before the response headers")
        buf += chunk
    head, _, body = buf.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        raise TransportError(f"bad status line {status_line!r}")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = headers.get("content-length")
    chunked = "chunked" in headers.get("transfer-encoding", "").lower()
    want = int(length) if length and length.isdigit() and not chunked else None
    while want is None or len(body) < want:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    if chunked:
        body = _dechunk(body)
    elif want is not None:
        body = body[:want]
    return Response(int(parts[1]), headers, body)


def _dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, data = data.partition(b"\r\n")
        try:
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
        except ValueError:
            break
        if size == 0:
            break
        out += data[:size]
        data = data[size + 2 :]
    return out
