"""Bytes of an image from a local file or an http(s) URL, bounded in every direction.

- Local files: regular files only (a FIFO, device or directory is refused before it is read, so
  `/dev/zero` or a named pipe cannot hang or flood a load); the size cap counts bytes actually read.
- URLs: every hop (redirects included) is resolved first and refused when the address is not a
  public one (loopback, private, link-local, multicast, reserved, unspecified, in any spelling:
  the check runs on the resolved address), unless `allow_private` is set; the connection then goes
  to the address that was checked. One total deadline covers an entire download (retries and
  waits included), a watchdog closes the socket when it passes, so a server that trickles bytes
  cannot hold a fetch longer than that. `Retry-After` is honoured up to a cap.
"""

from __future__ import annotations

import contextlib
import email.utils
import functools
import http.client
import ipaddress
import os
import socket
import ssl
import stat
import threading
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from ccvec import defaults
from ccvec.sources import local_path, normalise_url, not_a_regular_file

USER_AGENT = "ccvec/0.1 (+https://github.com/creativecommons)"
RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}
REDIRECT_STATUS = {301, 302, 303, 307, 308}
CHUNK = 64 * 1024


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One TLS context per process: creating one loads the CA store, too slow to repeat per image."""
    return ssl.create_default_context()


class FetchError(Exception):
    """The bytes could not be had; the message says why."""


class DeadlineExceeded(FetchError):
    """The whole download (attempts, redirects, waits) outlasted its deadline: no retry can help."""


@dataclass(frozen=True)
class FetchPolicy:
    max_bytes: int = defaults.MAX_BYTES
    timeout: float = defaults.FETCH_TIMEOUT  # connect and each read
    deadline: float = defaults.FETCH_DEADLINE  # one download, start to end: attempts, redirects, waits
    retries: int = defaults.FETCH_RETRIES
    backoff: float = 0.5
    max_retry_after: float = defaults.MAX_RETRY_AFTER  # longer Retry-After waits end the download
    max_redirects: int = 5
    allow_private: bool = False  # fetch from loopback / private / link-local addresses too
    allow_addresses: frozenset[str] = frozenset()  # these non-public addresses only (a known mirror)
    remote_only: bool = False  # refuse local files (manifests from third parties)


def fetch(location: str, policy: FetchPolicy = FetchPolicy()) -> bytes:
    path = local_path(location)
    if path is not None:
        if policy.remote_only:
            raise FetchError("local file refused: --remote-only fetches http(s) URLs only")
        return read_file(path, policy.max_bytes)
    if location.lower().startswith(("http://", "https://")):
        return _download(location, policy)
    raise FetchError(f"unsupported location {location[:100]!r}")


# ---------------------------------------------------------------- local files


def read_file(path: Path, max_bytes: int) -> bytes:
    """A regular file's bytes, at most `max_bytes` of them (counted while reading)."""
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; fstat then refuses it.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except OSError:
        raise FetchError(not_a_regular_file(path) or "cannot open file") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise FetchError(not_a_regular_file(path) or "not a regular file")
        chunks, total = [], 0
        while chunk := os.read(fd, CHUNK):
            total += len(chunk)
            if total > max_bytes:
                raise FetchError(f"file is over the {max_bytes:,}-byte limit")
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError as exc:
        raise FetchError(f"cannot read file: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


# ---------------------------------------------------------------- address check


def address_problem(address: str) -> str | None:
    """Why a resolved IP address is not a public one (SSRF guard), or None when it is."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is None and ip in ipaddress.ip_network("64:ff9b::/96"):  # NAT64
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            inner = address_problem(str(embedded))
            return f"{inner} (inside IPv6 {ip})" if inner else None
    for kind in ("loopback", "unspecified", "link_local", "multicast", "reserved", "private"):
        if getattr(ip, f"is_{kind}"):
            return f"{ip} is a {kind.replace('_', '-')} address"
    if not ip.is_global:
        return f"{ip} is not a public address"
    return None


def resolve(host: str, port: int, allow_private: bool, allowed: frozenset[str] = frozenset()) -> list[str]:
    """The addresses `host` resolves to, refused as a whole when any of them is not public
    (nor listed in `allowed`). Resolving connects to nothing: numeric spellings of addresses
    (decimal, hex, octal, short forms) are turned into addresses by the resolver itself."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchError(f"cannot resolve host {host!r}: {getattr(exc, 'strerror', None) or exc}") from None
    addresses: list[str] = []
    for info in infos:
        address = info[4][0]
        if not isinstance(address, str):  # IPv4/IPv6 results are always text; refuse anything else
            raise FetchError(f"cannot resolve host {host!r}: unexpected address {address!r}")
        if address not in addresses:  # duplicates dropped, first order kept
            addresses.append(address)
    if not allow_private:
        for address in addresses:
            problem = None if address in allowed else address_problem(address)
            if problem:
                raise FetchError(
                    f"refused: host {host!r} resolves to an address that is not public ({problem}); "
                    "--allow-private-urls allows such addresses"
                )
    return addresses


# ---------------------------------------------------------------- HTTP


class _Deadline:
    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds
        self.seconds = seconds

    def left(self) -> float:
        return self.end - time.monotonic()

    def check(self) -> float:
        left = self.left()
        if left <= 0:
            raise DeadlineExceeded(f"download took longer than the {self.seconds:g}s deadline")
        return left


def _download(url: str, policy: FetchPolicy) -> bytes:
    deadline = _Deadline(policy.deadline)
    last = "no attempt made"
    for attempt in range(policy.retries + 1):
        try:
            return _follow(url, policy, deadline)
        except _Retry as retry:
            last = retry.reason
            if attempt == policy.retries:
                break
            wait = retry.after if retry.after is not None else policy.backoff * 2**attempt
            if wait > policy.max_retry_after:
                last += f"; server asked to wait {wait:g}s, over the {policy.max_retry_after:g}s cap"
                break
            if wait >= deadline.left():
                last += f"; no time left within the {policy.deadline:g}s deadline to retry"
                break
            time.sleep(wait)
        except DeadlineExceeded as exc:
            if attempt:
                raise DeadlineExceeded(f"download failed after {attempt + 1} attempt(s): {exc}") from None
            raise
    raise FetchError(f"download failed after {attempt + 1} attempt(s): {last}")


class _Retry(Exception):
    def __init__(self, reason: str, after: float | None = None) -> None:
        super().__init__(reason)
        self.reason, self.after = reason, after


def _follow(url: str, policy: FetchPolicy, deadline: _Deadline) -> bytes:
    """One attempt: request, following redirects, each hop checked."""
    for _ in range(policy.max_redirects + 1):
        status, headers, body = _request(url, policy, deadline)
        if status in REDIRECT_STATUS and headers.get("Location"):
            target = urljoin(url, headers["Location"])
            if urlsplit(target).scheme.lower() not in ("http", "https"):
                raise FetchError(f"refused: redirect to a non-http(s) location {target[:100]!r}")
            try:
                url = normalise_url(target)
            except ValueError as exc:
                raise FetchError(f"bad redirect: {exc}") from None
            continue
        if status == 200:
            return body
        reason = f"HTTP {status} {http.client.responses.get(status, '')}".strip()
        if status in RETRY_STATUS:
            raise _Retry(reason, _retry_after(headers.get("Retry-After")))
        raise FetchError(f"download failed after 1 attempt(s): {reason}")
    raise FetchError(f"more than {policy.max_redirects} redirects")


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _request(
    url: str, policy: FetchPolicy, deadline: _Deadline
) -> tuple[int, http.client.HTTPMessage, bytes]:
    parts = urlsplit(url)
    https = parts.scheme.lower() == "https"
    host = parts.hostname or ""
    port = parts.port or (443 if https else 80)
    addresses = resolve(host, port, policy.allow_private, policy.allow_addresses)
    sock = _connect(addresses, port, min(policy.timeout, deadline.check()))
    watchdog = threading.Timer(deadline.left(), _shutdown, [sock])
    watchdog.daemon = True
    watchdog.start()
    try:
        if https:
            sock = _tls_context().wrap_socket(sock, server_hostname=host)
        conn = http.client.HTTPConnection(host, port, timeout=policy.timeout)
        conn.sock = sock
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        # No content coding asked for (without the header any is acceptable, RFC 9110 12.5.3).
        headers = {"User-Agent": USER_AGENT, "Accept": "image/*,*/*;q=0.5", "Accept-Encoding": "identity"}
        conn.request("GET", target, headers=headers)
        response = conn.getresponse()
        status = response.status
        if status != 200:
            return status, response.headers, b""
        body = _read_body(response, policy, deadline)
        return status, response.headers, _decoded(body, response.headers.get("Content-Encoding"), policy)
    except (OSError, http.client.HTTPException) as exc:
        if deadline.left() <= 0:
            raise _Retry(f"download took longer than the {policy.deadline:g}s deadline") from None
        if isinstance(exc, TimeoutError | socket.timeout):
            raise _Retry(f"timed out after {policy.timeout:g}s") from None
        detail = " ".join(str(exc).split())[:200]  # server-controlled text: one short line
        raise _Retry(f"{type(exc).__name__}: {detail}".rstrip(": ")) from None
    finally:
        watchdog.cancel()
        sock.close()


def _connect(addresses: list[str], port: int, timeout: float) -> socket.socket:
    last: OSError | None = None
    for address in addresses:
        try:
            return socket.create_connection((address, port), timeout=timeout)
        except OSError as exc:
            last = exc
    reason = "timed out" if isinstance(last, TimeoutError) else (getattr(last, "strerror", None) or last)
    raise _Retry(f"cannot connect: {reason}")


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def _decoded(body: bytes, coding: str | None, policy: FetchPolicy) -> bytes:
    """The body without the content coding a server used although none was asked for: gzip and
    deflate are undone (codings listed in the order applied, so undone from the last); any other
    coding is refused by name rather than read as a corrupt image."""
    codings = [c.strip().lower() for c in (coding or "").split(",") if c.strip()]
    for name in reversed(codings):
        if name == "identity":
            continue
        if name not in ("gzip", "x-gzip", "deflate"):
            raise FetchError(f"response is encoded as {name[:40]!r} (Content-Encoding): not decoded by ccvec")
        body = _inflate(body, name, policy.max_bytes)
    return body


def _inflate(body: bytes, name: str, limit: int) -> bytes:
    """gzip or deflate (zlib's, or raw as some servers send it) undone, at most `limit` bytes of
    output: a small gzip can hold gigabytes."""
    if name == "deflate":
        wbits = zlib.MAX_WBITS if body[:1] == b"\x78" else -zlib.MAX_WBITS
    else:
        wbits = 16 + zlib.MAX_WBITS
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise FetchError(f"response body is not valid {name} (Content-Encoding): {exc}") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise FetchError(f"response decodes ({name}) to over the {limit:,}-byte limit")
    return out


def _read_body(response: http.client.HTTPResponse, policy: FetchPolicy, deadline: _Deadline) -> bytes:
    declared = response.headers.get("Content-Length", "").strip()
    if declared.isdigit() and int(declared) > policy.max_bytes:
        raise FetchError(f"response is {int(declared):,} bytes, over the {policy.max_bytes:,}-byte limit")
    chunks, total = [], 0
    while True:
        deadline.check()
        chunk = response.read1(CHUNK)
        if not chunk:
            break
        total += len(chunk)
        if total > policy.max_bytes:
            raise FetchError(f"response is over the {policy.max_bytes:,}-byte limit")
        chunks.append(chunk)
    if deadline.left() <= 0:
        raise DeadlineExceeded(f"download took longer than the {policy.deadline:g}s deadline")
    if declared.isdigit() and total < int(declared):
        raise _Retry(f"connection closed after {total:,} of {int(declared):,} bytes")
    return b"".join(chunks)
