"""Exception hierarchy of the protocol core.

Two kinds of failure, kept apart as h11 does:

* :class:`LocalProtocolError` -- *you* misused the API (an APID of 4000, a
  sequence count that does not fit).  Raised while building.
* :class:`DecodeError` -- the *peer* (or the link) handed us bytes that are
  not a valid packet.  Raised by strict ``unpack`` functions; stream parsers
  such as :class:`fsw.protocol.framing.Deframer` never raise, they report a
  :class:`~fsw.protocol.framing.Dropped` record instead.
"""

from __future__ import annotations


class ProtocolError(ValueError):
    """Base class of every protocol error."""


class LocalProtocolError(ProtocolError):
    """A packet could not be built: a field value is out of its range."""


class DecodeError(ProtocolError):
    """Received bytes are not a valid packet.

    ``reason`` is a short machine-readable code (``"crc"``, ``"length"``,
    ``"version"`` ...) that counters and drop records use.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


class BytesTooShortError(DecodeError):
    """Fewer bytes than the layout needs."""

    def __init__(self, expected: int, got: int, what: str = "packet") -> None:
        super().__init__("short", f"{what} needs {expected} bytes, got {got}")
        self.expected_len = expected
        self.bytes_len = got
