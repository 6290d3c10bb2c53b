"""Durable state, seen from the core: a tiny key -> bytes store.

Core code saves records through this protocol; it never opens files.  The
file-backed store (temporary file, fsync, rename) is in
:mod:`fsw.io.state`; :class:`MemoryStore` serves simulated runs and tests,
and can be told to "crash" at a given write to test restarts.

Records carry their own integrity check (:func:`seal` / :func:`unseal`), so a
torn or corrupted record reads as *missing*, never as a wrong value.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from ..protocol.crc import crc16

MAGIC = b"LPE1"


class StateStore(Protocol):
    def load(self, key: str) -> bytes | None: ...
    def save(self, key: str, data: bytes) -> None: ...


class CrashNow(Exception):
    """Raised by :class:`MemoryStore` at the write it was told to crash on (test aid)."""


class MemoryStore:
    """In-memory store.  ``crash_after`` writes, the next write raises :class:`CrashNow` before saving."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}
        self.writes = 0
        self.crash_after: int | None = None

    def load(self, key: str) -> bytes | None:
        return self.data.get(key)

    def save(self, key: str, data: bytes) -> None:
        if self.crash_after is not None and self.writes >= self.crash_after:
            raise CrashNow(f"simulated crash before write {self.writes + 1} ({key})")
        self.data[key] = bytes(data)
        self.writes += 1


def seal(obj: Any) -> bytes:
    """JSON record with a magic, a length and a CRC-16."""
    return seal_json(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode())


def seal_json(body: bytes) -> bytes:
    """:func:`seal` for a JSON text already encoded the same way (sorted keys, no spaces).

    For records written often with a fixed layout, encoded faster by hand;
    their tests compare the text with :func:`json.dumps`.
    """
    head = MAGIC + len(body).to_bytes(4, "big")
    return b"".join((head, body, crc16(body, crc16(head)).to_bytes(2, "big")))


def unseal(data: bytes | None) -> Any | None:
    """The object in a sealed record, or ``None`` when missing, torn or corrupt."""
    if not data or len(data) < 10 or data[:4] != MAGIC:
        return None
    n = int.from_bytes(data[4:8], "big")
    if len(data) != 10 + n or crc16(data[:-2]) != int.from_bytes(data[-2:], "big"):
        return None
    try:
        return json.loads(data[8:-2])
    except ValueError:
        return None


def load_record(store: StateStore, key: str) -> Any | None:
    return unseal(store.load(key))


def save_record(store: StateStore, key: str, obj: Any) -> None:
    store.save(key, seal(obj))
