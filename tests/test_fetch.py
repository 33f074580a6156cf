"""Fetching under attack: hostile URLs against a local HTTP server on 127.0.0.1, the SSRF address
check (on the classifier and the resolver only: nothing here connects beyond loopback), and local
files that are not regular files."""

from __future__ import annotations

import contextlib
import gzip
import http.server
import os
import socket
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from ccvec.fetch import FetchError, FetchPolicy, address_problem, fetch, resolve

from .images import encode, photo

JPEG = encode(photo("chelsea").convert("RGB").resize((64, 48)), "JPEG")
_RAW = zlib.compressobj(wbits=-zlib.MAX_WBITS)
ENCODED = {  # path -> (Content-Encoding, body)
    "/gzip.jpg": ("gzip", gzip.compress(JPEG)),
    "/deflate.jpg": ("deflate", zlib.compress(JPEG)),
    "/raw-deflate.jpg": ("deflate", _RAW.compress(JPEG) + _RAW.flush()),
    "/twice.jpg": ("gzip, gzip", gzip.compress(gzip.compress(JPEG))),
    "/gzip-bomb.jpg": ("gzip", gzip.compress(bytes(50_000_000))),  # 49 KB on the wire
    "/bad-gzip.jpg": ("gzip", JPEG),
    "/brotli.jpg": ("br", b"\x1b\x00"),
}


class _Hostile(http.server.BaseHTTPRequestHandler):
    """Each path is one kind of hostile server behaviour."""

    protocol_version = "HTTP/1.1"
    hits: dict[str, int] = {}  # noqa: RUF012

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        hits = self.hits[path] = self.hits.get(path, 0) + 1
        port = self.server.server_address[1]
        redirects = {
            "/redir/relative": "/ok.jpg",
            "/redir/absolute": f"http://127.0.0.1:{port}/ok.jpg",
            "/redir/decimal": f"http://2130706433:{port}/ok.jpg",
            "/redir/hex": f"http://0x7f000001:{port}/ok.jpg",
            "/redir/octal": f"http://0177.0.0.1:{port}/ok.jpg",
            "/redir/short": f"http://127.1:{port}/ok.jpg",
            "/redir/other-loopback": f"http://127.0.0.2:{port}/ok.jpg",
            "/redir/ipv6": f"http://[::1]:{port}/ok.jpg",
            "/redir/loop": "/redir/loop",
            "/redir/file": "file:///etc/passwd",
            "/redir/ftp": "ftp://127.0.0.1/x.jpg",
            "/redir/gopher": "gopher://127.0.0.1:70/",
            "/redir/chain1": "/redir/chain2",
            "/redir/chain2": "/redir/chain3",
            "/redir/chain3": "/ok.jpg",
            "/redir/space": "/ok .jpg",
            "/redir/control": "/ok\x07.jpg",
        }
        if path in redirects:
            return self._send(302, b"", location=redirects[path])
        if path in ("/ok.jpg", "/ok%20.jpg"):
            return self._send(200, JPEG, "image/jpeg")
        if path in ENCODED:  # a content coding the request did not ask for
            return self._send(200, ENCODED[path][1], "image/jpeg", encoding=ENCODED[path][0])
        if path == "/identity-only.jpg":  # a server that honours Accept-Encoding
            ok = self.headers.get("Accept-Encoding") == "identity"
            return (
                self._send(200, JPEG, "image/jpeg")
                if ok
                else self._send(200, gzip.compress(JPEG), "image/jpeg", encoding="gzip")
            )
        if path == "/html-type.jpg":  # a real JPEG served as text/html: the bytes decide
            return self._send(200, JPEG, "text/html")
        if path == "/login.jpg":
            return self._send(200, b"<html>please log in</html>", "text/html")
        if path == "/json.jpg":
            return self._send(200, b'{"error": "quota"}', "application/json")
        if path == "/empty.jpg":
            return self._send(200, b"", "image/jpeg")
        if path == "/no-content.jpg":
            return self._send(204, b"")
        if path == "/missing.jpg":
            return self._send(404, b"nope")
        if path == "/gone.jpg":
            return self._send(410, b"gone")
        if path == "/forbidden.jpg":
            return self._send(403, b"no")
        if path == "/error.jpg":
            return self._send(500, b"boom")
        if path == "/busy-then-ok.jpg":
            if hits == 1:
                return self._send(503, b"busy", retry_after="1")
            return self._send(200, JPEG, "image/jpeg")
        if path == "/busy-date.jpg":
            if hits == 1:
                when = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 1))
                return self._send(429, b"slow down", retry_after=when)
            return self._send(200, JPEG, "image/jpeg")
        if path == "/busy-forever.jpg":
            return self._send(503, b"come back tomorrow", retry_after="86400")
        if path == "/big-declared.jpg":
            return self._send(200, JPEG, "image/jpeg", length=10**12)
        if path == "/big-actual.jpg":
            return self._send(200, JPEG + bytes(300_000), "image/jpeg")
        if path == "/short-body.jpg":  # declares more than it sends, then closes
            self._head(200, "image/jpeg", length=len(JPEG) * 2)
            self.wfile.write(JPEG)
            self.close_connection = True
            return None
        if path == "/truncated.jpg":
            return self._send(200, JPEG[: len(JPEG) // 3], "image/jpeg")
        if path == "/endless.jpg":  # chunked, never ends
            self._head(200, "image/jpeg", chunked=True)
            block = JPEG[:1024]
            try:
                while True:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(block), block))
            except OSError:
                return None
        if path == "/endless-unlimited.jpg":  # no length, no chunking: body until close
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Connection", "close")
            self.end_headers()
            try:
                while True:
                    self.wfile.write(bytes(65536))
            except OSError:
                return None
        if path == "/trickle.jpg":  # one byte every 50 ms: each read is fast, the whole is not
            self._head(200, "image/jpeg", length=len(JPEG))
            try:
                for byte in JPEG:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(0.05)
            except OSError:
                return None
        if path == "/trickle-headers.jpg":
            try:
                self.wfile.write(b"HTTP/1.1 200 OK\r\n")
                for i in range(10_000):
                    self.wfile.write(b"X-%d: y\r\n" % i)
                    self.wfile.flush()
                    time.sleep(0.05)
            except OSError:
                return None
        if path == "/hang.jpg":
            time.sleep(4)
            return self._send(200, JPEG, "image/jpeg")
        if path == "/close.jpg":  # closes without a response
            self.close_connection = True
            return None
        if path == "/garbage-status.jpg":
            self.wfile.write(b"NOT HTTP AT ALL\r\n\r\n")
            self.close_connection = True
            return None
        if path == "/too-many-headers.jpg":
            self.wfile.write(
                b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(500)) + b"\r\n"
            )
            self.close_connection = True
            return None
        return self._send(404, b"not found")

    def _head(self, status: int, ctype: str, length: int | None = None, chunked: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        elif length is not None:
            self.send_header("Content-Length", str(length))
        self.end_headers()

    def _send(
        self,
        status: int,
        body: bytes,
        ctype: str = "application/octet-stream",
        length: int | None = None,
        location: str | None = None,
        retry_after: str | None = None,
        encoding: str | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        if encoding:
            self.send_header("Content-Encoding", encoding)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        if location:
            self.send_header("Location", location)
        if retry_after:
            self.send_header("Retry-After", retry_after)
        self.end_headers()
        with contextlib.suppress(OSError):
            self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def hostile_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hostile)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


LOCAL = FetchPolicy(
    max_bytes=200_000,
    timeout=1.0,
    deadline=2.5,
    retries=2,
    backoff=0.05,
    max_retry_after=2.0,
    allow_private=True,
)

# path -> None when the bytes must arrive (the JPEG), else a fragment of the refusal reason.
URL_CASES: dict[str, str | None] = {
    "/ok.jpg": None,
    "/html-type.jpg": None,
    "/redir/relative": None,
    "/redir/absolute": None,
    "/redir/decimal": None,
    "/redir/hex": None,
    "/redir/octal": None,
    "/redir/short": None,
    "/redir/chain1": None,
    "/redir/space": None,
    "/busy-then-ok.jpg": None,
    "/gzip.jpg": None,
    "/deflate.jpg": None,
    "/raw-deflate.jpg": None,
    "/twice.jpg": None,
    "/identity-only.jpg": None,
    "/gzip-bomb.jpg": "decodes (gzip) to over the 200,000-byte limit",
    "/bad-gzip.jpg": "not valid gzip",
    "/brotli.jpg": "encoded as 'br' (Content-Encoding): not decoded by ccvec",
    "/busy-date.jpg": None,
    "/redir/loop": "more than 5 redirects",
    "/redir/file": "redirect to a non-http(s) location",
    "/redir/ftp": "redirect to a non-http(s) location",
    "/redir/gopher": "redirect to a non-http(s) location",
    "/redir/control": "control characters",
    "/no-content.jpg": "HTTP 204",
    "/missing.jpg": "HTTP 404",
    "/gone.jpg": "HTTP 410",
    "/forbidden.jpg": "HTTP 403",
    "/error.jpg": "after 3 attempt(s): HTTP 500",
    "/busy-forever.jpg": "over the 2s cap",
    "/big-declared.jpg": "over the 200,000-byte limit",
    "/big-actual.jpg": "over the 200,000-byte limit",
    "/endless.jpg": "over the 200,000-byte limit",
    "/endless-unlimited.jpg": "over the 200,000-byte limit",
    "/short-body.jpg": "connection closed after",
    "/trickle.jpg": "deadline",
    "/trickle-headers.jpg": "deadline",
    "/hang.jpg": "deadline",
    "/close.jpg": "after 3 attempt(s)",
    "/garbage-status.jpg": "after 3 attempt(s)",
    "/too-many-headers.jpg": "after 3 attempt(s)",
}


@pytest.mark.parametrize("path", list(URL_CASES))
def test_hostile_url(hostile_server: str, path: str) -> None:
    expected = URL_CASES[path]
    started = time.monotonic()
    if expected is None:
        assert fetch(hostile_server + path, LOCAL) == JPEG
    else:
        with pytest.raises(FetchError) as caught:
            fetch(hostile_server + path, LOCAL)
        assert expected in str(caught.value), str(caught.value)
        assert "\n" not in str(caught.value)
    # the deadline covers the whole download: retries, waits and redirects included
    assert time.monotonic() - started < LOCAL.deadline + LOCAL.timeout + 0.5


def test_url_bodies_that_arrive_but_are_not_images(hostile_server: str) -> None:
    from ccvec.decode import DecodeError, decode

    for path, fragment in (
        ("/login.jpg", "not an image"),
        ("/json.jpg", "not an image"),
        ("/empty.jpg", "empty file"),
        ("/truncated.jpg", "cannot decode"),
    ):
        with pytest.raises(DecodeError, match=fragment):
            decode(fetch(hostile_server + path, LOCAL), None)


def test_retry_after_is_honoured(hostile_server: str) -> None:
    _Hostile.hits.pop("/busy-then-ok.jpg", None)
    started = time.monotonic()
    assert fetch(hostile_server + "/busy-then-ok.jpg", LOCAL) == JPEG
    assert time.monotonic() - started >= 0.9  # waited the 1 s asked for, not the 0.05 s backoff
    assert _Hostile.hits["/busy-then-ok.jpg"] == 2


def test_private_addresses_are_refused_by_default_without_connecting(hostile_server: str) -> None:
    """Every loopback spelling is refused before any connection: the server sees no request."""
    port = hostile_server.rsplit(":", 1)[1]
    _Hostile.hits.clear()
    spellings = [
        "127.0.0.1",
        "localhost",
        "2130706433",
        "0x7f000001",
        "0x7f.0.0.1",
        "0177.0.0.1",
        "017700000001",
        "127.1",
        "127.0.0.2",
        "[::ffff:127.0.0.1]",
        "[::ffff:7f00:1]",
        "[::1]",
    ]
    for host in spellings:
        with pytest.raises(FetchError, match=r"refused: host .* resolves to") as caught:
            fetch(f"http://{host}:{port}/ok.jpg", FetchPolicy(timeout=1, deadline=2))
        assert "--allow-private-urls" in str(caught.value)
    assert _Hostile.hits == {}


def test_every_redirect_hop_is_checked(hostile_server: str) -> None:
    """Only 127.0.0.1 is trusted: redirects to another loopback address (IPv4 or IPv6) are
    refused at that hop, before connecting."""
    policy = FetchPolicy(timeout=1, deadline=2, retries=0, allow_addresses=frozenset({"127.0.0.1"}))
    assert fetch(hostile_server + "/redir/decimal", policy) == JPEG  # 2130706433 is 127.0.0.1
    with pytest.raises(FetchError, match=r"127\.0\.0\.2 is a loopback address"):
        fetch(hostile_server + "/redir/other-loopback", policy)
    with pytest.raises(FetchError, match="::1 is a loopback address"):
        fetch(hostile_server + "/redir/ipv6", policy)


ADDRESSES: dict[str, str | None] = {
    "127.0.0.1": "loopback",
    "127.255.255.254": "loopback",
    "10.1.2.3": "private",
    "172.16.0.1": "private",
    "192.168.1.1": "private",
    "169.254.169.254": "link-local",
    "0.0.0.0": "unspecified",
    "224.0.0.1": "multicast",
    "239.255.255.250": "multicast",
    "240.0.0.1": "reserved",
    "255.255.255.255": "reserved",
    "100.64.0.1": "not a public address",
    "192.0.2.1": "private",
    "198.18.0.1": "private",
    "::1": "loopback",
    "::": "unspecified",
    "fe80::1": "link-local",
    "fe80::1%eth0": "link-local",
    "fc00::1": "private",
    "fd12:3456::1": "private",
    "ff02::1": "multicast",
    "::ffff:127.0.0.1": "loopback",
    "::ffff:10.0.0.1": "private",
    "::ffff:169.254.169.254": "link-local",
    "2002:7f00:1::": "loopback",  # 6to4 around 127.0.0.1
    "2002:a9fe:a9fe::": "link-local",  # 6to4 around 169.254.169.254
    "64:ff9b::7f00:1": "loopback",  # NAT64 around 127.0.0.1
    "64:ff9b::a9fe:a9fe": "link-local",
    "2001:db8::1": "private",  # documentation range
    "8.8.8.8": None,
    "1.1.1.1": None,
    "93.184.216.34": None,
    "2606:4700:4700::1111": None,
    "::ffff:8.8.8.8": None,
}


@pytest.mark.parametrize("address", list(ADDRESSES))
def test_address_classifier(address: str) -> None:
    expected = ADDRESSES[address]
    problem = address_problem(address)
    if expected is None:
        assert problem is None
    else:
        assert problem is not None and expected in problem


@pytest.mark.parametrize(
    ("host", "resolved"),
    [
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("0", "0.0.0.0"),
        ("2852039166", "169.254.169.254"),
        ("0xa9fea9fe", "169.254.169.254"),
        ("0251.0376.0251.0376", "169.254.169.254"),
        ("169.254.43518", "169.254.169.254"),
        ("10.1", "10.0.0.1"),
        ("::ffff:a9fe:a9fe", "169.254.169.254"),
    ],
)
def test_resolver_spellings_are_classified_after_resolution(host: str, resolved: str) -> None:
    """Resolve then classify; numeric spellings resolve locally, nothing is connected to."""
    with pytest.raises(FetchError, match=rf"not public \({resolved} is|inside IPv6"):
        resolve(host, 80, allow_private=False)
    assert resolve(host, 80, allow_private=True)


def test_local_files_are_regular_files_only(tmp_path: Path) -> None:
    good = tmp_path / "good.jpg"
    good.write_bytes(JPEG)
    (tmp_path / "dir.jpg").mkdir()
    os.mkfifo(tmp_path / "pipe.jpg")
    (tmp_path / "loop.jpg").symlink_to(tmp_path / "loop.jpg")
    (tmp_path / "dangling.jpg").symlink_to(tmp_path / "nowhere.jpg")
    (tmp_path / "zero.jpg").symlink_to("/dev/zero")
    (tmp_path / "link.jpg").symlink_to(good)
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(tmp_path / "s.jpg"))
    bad_name = tmp_path / os.fsdecode(b"caf\xe9.jpg")  # not UTF-8
    bad_name.write_bytes(JPEG)
    policy = FetchPolicy(max_bytes=len(JPEG) + 10)
    as_uri = lambda p: "file://" + __import__("urllib.parse").parse.quote_from_bytes(os.fsencode(p))  # noqa: E731
    assert fetch(as_uri(good), policy) == JPEG
    assert fetch(as_uri(tmp_path / "link.jpg"), policy) == JPEG
    assert fetch(as_uri(bad_name), policy) == JPEG
    expected = {
        "dir.jpg": "is a directory",
        "pipe.jpg": "FIFO",
        "loop.jpg": "symlink loop",
        "dangling.jpg": "dangling symlink",
        "zero.jpg": "character device",
        "s.jpg": "socket",
        "nowhere.jpg": "file not found",
    }
    for name, fragment in expected.items():
        started = time.monotonic()
        with pytest.raises(FetchError, match=fragment):
            fetch(as_uri(tmp_path / name), policy)
        assert time.monotonic() - started < 1
    with pytest.raises(FetchError, match="over the"):
        fetch(as_uri(good), FetchPolicy(max_bytes=100))
    with pytest.raises(FetchError, match="--remote-only"):
        fetch(as_uri(good), FetchPolicy(remote_only=True))
    sock.close()
