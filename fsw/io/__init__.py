"""I/O adapters: serial links (any pyserial URL, device paths, pseudo-terminals), the real clock and the
real-time runner that drives the sans-I/O nodes."""

from .clock import RealClock
from .link import Link, LinkError, LinkSpec, parse_link_spec
from .runner import RealTimeRunner

__all__ = ["Link", "LinkError", "LinkSpec", "RealClock", "RealTimeRunner", "parse_link_spec"]
