"""The durable state store on disk: one file per key, replaced atomically.

:class:`FileStore` implements :class:`fsw.core.state.StateStore`.  A save
writes the new bytes to a temporary file in the same directory, flushes them
to the disk (``fsync``), renames the temporary file over the old one (atomic
on POSIX), and flushes the directory so that the rename itself survives a
power cut.  A process killed at any step leaves either the old record or the
new one, never a mixture; a leftover temporary file is ignored and removed
at the next start.

The store keeps bytes only.  The core seals every record (magic, length,
CRC-16: :func:`fsw.core.state.seal`), so a file damaged some other way (a
torn write on a file system that does not honour the protocol, a flipped
bit, a truncation) reads as *missing*; the deploy manager then reports the
unit UNKNOWN and waits for a ground override.

``FileStore(dir, step_hook=fn)`` calls ``fn(step, key)`` before each step
(``"open"``, ``"write"``, ``"fsync"``, ``"rename"``, ``"dirsync"``,
``"done"``): the tests use it to kill the process at every step.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Callable

__all__ = ["FileStore", "KEY_RE"]

#: keys become file names: letters, digits, ``_ . -``, not starting with a dot; ``/`` separates the parts of
#: a namespaced key (``pus15/3/r12``) and is written as ``~`` in the file name
KEY_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*(/[A-Za-z0-9_][A-Za-z0-9_.\-]*)*$")
KEY_MAX = 128
SEP_IN_FILE_NAME = "~"
TMP_SUFFIX = ".tmp"
RECORD_SUFFIX = ".rec"


class FileStore:
    """See the module docstring."""

    def __init__(self, directory: str | os.PathLike[str], *, fsync: bool = True,
                 step_hook: Callable[[str, str], None] | None = None) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        if not self.directory.is_dir():
            raise ValueError(f"{self.directory} is not a directory")
        self.fsync = fsync
        self.step_hook = step_hook
        self.writes = 0
        self.read_errors = 0
        self.stale_removed = 0
        for p in self.directory.glob("*" + TMP_SUFFIX):  # a save that never reached its rename
            try:
                p.unlink()
                self.stale_removed += 1
            except OSError:
                pass

    def path(self, key: str) -> Path:
        if not isinstance(key, str) or len(key) > KEY_MAX or not KEY_RE.match(key) or ".." in key:
            raise ValueError(f"state key {key!r} must match {KEY_RE.pattern} and have at most {KEY_MAX} "
                             "characters (it becomes a file name)")
        return self.directory / (key.replace("/", SEP_IN_FILE_NAME) + RECORD_SUFFIX)

    def keys(self) -> list[str]:
        return sorted(p.name[:-len(RECORD_SUFFIX)].replace(SEP_IN_FILE_NAME, "/")
                      for p in self.directory.glob("*" + RECORD_SUFFIX))

    def load(self, key: str) -> bytes | None:
        """The bytes last saved under ``key``, or ``None`` if there are none (or they cannot be read)."""
        p = self.path(key)
        try:
            return p.read_bytes()
        except FileNotFoundError:
            return None
        except OSError:
            # unreadable reads as missing: for the deploy manager that is UNKNOWN, the safe reading
            self.read_errors += 1
            return None

    def save(self, key: str, data: bytes) -> None:
        """Replace ``key`` atomically and durably; raises ``OSError`` (the old value is then intact)."""
        final = self.path(key)
        tmp = final.with_name(f".{final.name}.{os.getpid()}{TMP_SUFFIX}")
        step = self._step
        step("open", key)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0), 0o644)
        try:
            try:
                step("write", key)
                view = memoryview(bytes(data))
                while view:
                    n = os.write(fd, view)
                    view = view[n:]
                step("fsync", key)
                if self.fsync:
                    os.fsync(fd)
            finally:
                os.close(fd)
            step("rename", key)
            os.replace(tmp, final)
        except BaseException:
            try:
                tmp.unlink()
            except OSError:
                pass
            raise
        step("dirsync", key)
        if self.fsync:
            self._sync_directory()
        self.writes += 1
        step("done", key)

    def _sync_directory(self) -> None:
        try:
            dfd = os.open(self.directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        except OSError:
            return  # some platforms cannot open a directory; the rename is still atomic
        try:
            os.fsync(dfd)
        except OSError:
            pass
        finally:
            os.close(dfd)

    def _step(self, name: str, key: str) -> None:
        if self.step_hook is not None:
            self.step_hook(name, key)
