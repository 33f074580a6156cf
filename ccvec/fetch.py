"""Bytes of an image from a local file or an http(s) URL, with a size cap, timeouts and retries."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from dataclasses import dataclass

from ccvec import defaults
from ccvec.sources import local_path

USER_AGENT = "ccvec/0.1 (+https://github.com/creativecommons)"
RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}


class FetchError(Exception):
    """The bytes could not be had; the message says why."""


@dataclass(frozen=True)
class FetchPolicy:
    max_bytes: int = defaults.MAX_BYTES
    timeout: float = defaults.FETCH_TIMEOUT
    retries: int = defaults.FETCH_RETRIES
    backoff: float = 0.5


def fetch(location: str, policy: FetchPolicy = FetchPolicy()) -> bytes:
    path = local_path(location)
    if path is not None:
        return _read_file(path, policy.max_bytes)
    if location.lower().startswith(("http://", "https://")):
        return _download(location, policy)
    raise FetchError(f"unsupported location {location[:100]!r}")


def _read_file(path, max_bytes: int) -> bytes:
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise FetchError(f"file is {size:,} bytes, over the {max_bytes:,}-byte limit")
        return path.read_bytes()
    except FileNotFoundError:
        raise FetchError("file not found") from None
    except IsADirectoryError:
        raise FetchError("is a directory, not a file") from None
    except PermissionError:
        raise FetchError("permission denied") from None
    except OSError as exc:
        raise FetchError(f"cannot read file: {exc.strerror or exc}") from None


def _download(url: str, policy: FetchPolicy) -> bytes:
    last = "no attempt made"
    for attempt in range(policy.retries + 1):
        if attempt:
            time.sleep(policy.backoff * 2 ** (attempt - 1))
        try:
            return _download_once(url, policy)
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code} {exc.reason}"
            if exc.code not in RETRY_STATUS:
                break
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            last = f"timed out after {policy.timeout:g}s" if isinstance(reason, TimeoutError) else f"{reason}"
    raise FetchError(f"download failed after {attempt + 1} attempt(s): {last}")


def _download_once(url: str, policy: FetchPolicy) -> bytes:
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    with urllib.request.urlopen(request, timeout=policy.timeout) as response:
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > policy.max_bytes:
            raise FetchError(f"response is {int(declared):,} bytes, over the {policy.max_bytes:,}-byte limit")
        data = response.read(policy.max_bytes + 1)
        if len(data) > policy.max_bytes:
            raise FetchError(f"response is over the {policy.max_bytes:,}-byte limit")
        if declared and declared.isdigit() and len(data) < int(declared):
            raise urllib.error.URLError(f"connection closed after {len(data):,} of {declared} bytes")
        return data
