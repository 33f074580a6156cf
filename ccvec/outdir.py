"""An output folder that ccvec owns: refreshed in place, file by file atomically, and never
touching a file it did not write.

Every file ccvec writes into OUT is listed in `OUT/.ccvec-manifest.json`. A refresh stages new
files under `OUT/.ccvec-staging/`, moves each into place with an atomic rename, removes the files
of the previous manifest that are not written again, and writes the new manifest last. Before any
move the manifest lists old and new files together, so an interrupted refresh leaves nothing
foreign behind. An OUT holding files not in the manifest is refused.

What an interrupted refresh had staged is set aside in `OUT/.ccvec-resume/` by the next one, which
takes back the files named by their content (thumbnails: `reuse`) instead of making them again;
the rest is removed at its commit. Each file is staged whole (written beside, then renamed), so
nothing set aside is a partial file.

One command at a time writes an OUT: opening it takes an exclusive lock on the folder (flock, held
until the commit or the end of the process), and a second command opening the same OUT meanwhile
is refused in one line, before any work (it would share the staging folder with the first).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ccvec.errors import CcvecError
from ccvec.sources import OUTPUT_MARKER

MANIFEST = OUTPUT_MARKER
STAGING = ".ccvec-staging"
RESUME = ".ccvec-resume"  # the staging folder of an interrupted refresh, for reuse()
FORMAT = 1
REPORT = "report"  # the kind of a folder `ccvec run` or `ccvec report` wrote (and of one with no kind)
EXPORT = "export-clusters"  # the kind of a folder `ccvec export-clusters` wrote
WRITERS = {REPORT: "`ccvec run` or `ccvec report`", EXPORT: "`ccvec export-clusters`"}


def _files_under(root: Path) -> list[str]:
    """Relative paths of every file and symlink under root (symlinks not followed)."""
    found = []
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        for name in files + [d for d in dirs if (here / d).is_symlink()]:
            found.append((here / name).relative_to(root).as_posix())
        dirs[:] = [d for d in dirs if not (here / d).is_symlink()]
    return found


def check_writable(root: Path, option: str) -> None:
    """Refuse, before any work, a folder ccvec could not create or write: a file in its place, a
    parent that is a file or does not resolve, or one without write permission."""
    if root.exists() and not root.is_dir():
        raise CcvecError(f"{root} is a file: {option} needs a folder")
    existing = root
    while not existing.exists():
        if existing.is_symlink():  # a dangling link would be followed by mkdir
            raise CcvecError(f"cannot create {root}: {existing} is a dangling symlink")
        existing = existing.parent
    if not existing.is_dir():
        raise CcvecError(f"cannot create {root}: {existing} is not a folder")
    try:  # os.access says yes to root even where the kernel refuses (/proc, read-only mounts)
        os.rmdir(tempfile.mkdtemp(prefix=".ccvec-probe-", dir=existing))
    except OSError as exc:
        raise CcvecError(f"cannot write {root}: {exc.strerror or exc} in {existing}") from exc


class OutDir:
    """Collects the files of one refresh of OUT, then commits them (see the module docstring)."""

    def __init__(self, root: Path, kind: str = REPORT) -> None:
        self.root = root
        self.kind = kind
        self.previous = read_manifest(root)
        self.previous_files: set[str] = set(self.previous.get("files", []))
        self.files: set[str] = set()
        self.staging = root / STAGING
        self.resume = root / RESUME
        self.meta: dict[str, Any] = {}
        self._lock: int | None = None
        self._created = False  # made for the lock: removed again if nothing was written

    @classmethod
    def open(cls, root: Path, option: str = "--out", kind: str = REPORT) -> OutDir:
        """Check that OUT is new, empty or ccvec's own of this kind (a report, an export), and
        writable; refuse otherwise: a refresh removes the files it does not write again, so one
        kind's refresh would empty the other's folder."""
        root = root.expanduser()
        check_writable(root, option)
        lock, out_created = _lock(root)
        try:
            out = cls(root, kind)
        except BaseException:
            os.close(lock)
            raise
        out._lock, out._created = lock, out_created
        previous_kind = out.previous.get("kind", REPORT) if out.previous else kind
        if previous_kind != kind:
            out.release()
            raise CcvecError(
                f"{root} was written by {WRITERS.get(previous_kind, repr(previous_kind))}, not by "
                f"{WRITERS[kind]}: choose a new folder"
            )
        if root.exists():
            ours = out.previous_files | {MANIFEST, MANIFEST + ".tmp"}
            foreign = sorted(
                p
                for p in _files_under(root)
                if p not in ours and not p.startswith((STAGING + "/", RESUME + "/"))
            )
            if foreign:
                shown = ", ".join(foreign[:3]) + (
                    f" (and {len(foreign) - 3} more)" if len(foreign) > 3 else ""
                )
                raise CcvecError(
                    f"{root} holds files ccvec did not write ({shown}): choose a new or empty folder, "
                    f"or one that an earlier {WRITERS[kind]} wrote"
                )
        if out.staging.exists():  # a refresh that was interrupted: set aside for reuse()
            shutil.rmtree(out.resume, ignore_errors=True)
            os.replace(out.staging, out.resume)
        return out

    def release(self) -> None:
        """Let another command write OUT (done by commit; the end of the process does it too). A
        folder made only to hold the lock goes again when a failure left it empty."""
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None
            if self._created:
                with contextlib.suppress(OSError):  # not empty: written, or someone else's now
                    self.root.rmdir()

    def __del__(self) -> None:
        self.release()

    def exists(self, rel: str) -> bool:
        """A file of the previous refresh that is still there (kept as is, e.g. a cached thumbnail)."""
        return rel in self.previous_files and os.path.lexists(self.root / rel)

    def keep(self, rel: str) -> None:
        self.files.add(rel)

    def reuse(self, rel: str) -> bool:
        """Stage the file an interrupted refresh had staged at `rel`, if there is one: only for files
        named by their content (a thumbnail by the image's SHA-256), which cannot be stale."""
        kept = self.resume / rel
        if kept.is_symlink() or not kept.is_file():
            return False
        os.replace(kept, self._stage(rel))
        return True

    def _stage(self, rel: str) -> Path:
        if rel in self.files:
            raise ValueError(f"{rel} written twice")
        self.files.add(rel)
        path = self.staging / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def write_bytes(self, rel: str, data: bytes) -> None:
        path = self._stage(rel)
        partial = path.with_name(path.name + ".part")  # whole or absent, should the process die here
        partial.write_bytes(data)
        os.replace(partial, path)

    def write_text(self, rel: str, text: str) -> None:
        self.write_bytes(rel, text.encode("utf-8"))

    def symlink(self, rel: str, target: Path) -> None:
        os.symlink(target, self._stage(rel))

    def copy(self, rel: str, source: Path) -> None:
        shutil.copy2(source, self._stage(rel))

    def commit(self, meta: dict[str, Any] | None = None) -> tuple[int, int]:
        """Move staged files into place, drop stale ones; returns (written, removed)."""
        old = self.previous_files
        self.root.mkdir(parents=True, exist_ok=True)
        _write_manifest(self.root, {**self.previous, "files": sorted(old | self.files)})
        written = 0
        staged = _files_under(self.staging) if self.staging.exists() else []
        for rel in staged:
            target = self.root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            os.replace(self.staging / rel, target)
            written += 1
        stale = sorted(old - self.files)
        for rel in stale:
            path = self.root / rel
            if path.is_symlink() or path.is_file():
                path.unlink()
            _remove_empty_parents(path.parent, self.root)
        shutil.rmtree(self.staging, ignore_errors=True)
        shutil.rmtree(self.resume, ignore_errors=True)
        manifest = {"format": FORMAT, **(meta or {}), "kind": self.kind, "files": sorted(self.files)}
        _write_manifest(self.root, manifest)
        self.release()
        return written, len(stale)


def _lock(root: Path) -> tuple[int, bool]:
    """An exclusive lock on the folder root (created if new: True then), or one line saying who
    holds it."""
    created = not root.exists()
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise CcvecError(
            f"{root} is being written by another ccvec command right now: rerun when it has finished "
            "(it writes the same output), or choose another folder"
        ) from None
    return fd, created


def _remove_empty_parents(folder: Path, root: Path) -> None:
    while folder != root and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
        folder = folder.parent


def read_manifest(root: Path) -> dict[str, Any]:
    path = root / MANIFEST
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CcvecError(f"{path} is unreadable ({exc}): remove the folder or choose another") from exc
    if not isinstance(data, dict) or not isinstance(data.get("files"), list):
        raise CcvecError(f"{path} is not a ccvec manifest: choose another folder")
    return data


def _write_manifest(root: Path, data: dict[str, Any]) -> None:
    tmp = root / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, root / MANIFEST)
