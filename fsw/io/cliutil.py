"""Small pieces shared by the command-line programs (fsw, hw-sim)."""

from __future__ import annotations

import sys
from typing import Any

from ..dictionary import DictionaryError, load_dictionary


def parse_pairs(items: list[str], what: str, upper: bool = False) -> dict[str, str]:
    """``["fss=/dev/ttyUSB0", ...]`` -> ``{"fss": "/dev/ttyUSB0"}``; raises ValueError naming the bad item."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ValueError(f"{what} {item!r} must look like NAME=VALUE")
        key = key.strip()
        out[key.upper() if upper else key.lower()] = value.strip()
    return out


def dictionary_or_none(prog: str, path: str | None) -> Any:
    """The mission dictionary, or ``None`` after printing one clear line (the caller exits 2)."""
    try:
        return load_dictionary(path)
    except (DictionaryError, OSError) as exc:
        print(f"{prog}: dictionary error: {exc}", file=sys.stderr)
        return None
