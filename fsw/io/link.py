"""Serial links: any pyserial URL or device path, or a pseudo-terminal made on the fly.

A :class:`Link` is the one adapter between real bytes and the sans-I/O nodes.
It opens whatever the bench configuration names::

    /dev/ttyUSB0                   a real UART (RS-422 through an adapter)
    run/fss.pty                    a device path, typically a pty symlink another process published
    socket://127.0.0.1:5000        a raw TCP serial server
    rfc2217://host:2217            a Telnet COM-port (RFC 2217) serial server
    loop://                        pyserial's in-memory loopback
    pty:run/fss.pty                make a pseudo-terminal, publish its slave as the symlink
                                   run/fss.pty and serve on the master side

and never crashes on I/O trouble.  A port missing at start, a device
unplugged, a peer that closes its end: each becomes a counted, reported
state change (``on_event``) and the link reconnects with exponential back-off
on its own.  Only misuse raises (:class:`LinkError`, a ``ValueError``).

Threads: one reader per link blocks in ``select`` (or in pyserial's
``read``) and hands bytes to whoever consumes them, either the link's own
inbox (:meth:`Link.read`) or a listener installed by the real-time runner.
One writer per link drains a bounded output queue; unpaced writes on a file
descriptor skip the queue when it is empty, so a reply leaves at once, and with a
backlog they push what the descriptor takes from the caller's thread (the
writer thread would need the GIL back after every write, which a busy process
hands over only every few milliseconds).  With
``pace=True`` the writer releases bytes no faster than the line rate (see
:class:`fsw.core.pacing.LinePacer`), as a pseudo-terminal ignores baud.
"""

from __future__ import annotations

import errno
import os
import pkgutil
import select
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable, Final
from urllib.parse import parse_qs, urlsplit

import serial

from ..core.pacing import LinePacer

try:  # POSIX only: pseudo-terminals and raw file descriptors
    import termios
    import tty
    from serial.serialposix import Serial as _PosixSerial
except ImportError:  # pragma: no cover - Windows: URLs and COM ports still work through pyserial
    termios = tty = None  # type: ignore[assignment]
    _PosixSerial = None  # type: ignore[assignment,misc]

__all__ = ["Link", "LinkError", "LinkSpec", "parse_link_spec"]

#: event kinds passed to ``on_event(kind, detail)``
CONNECTED: Final = "connected"
DISCONNECTED: Final = "disconnected"
OPEN_FAILED: Final = "open_failed"

#: paced output leaves in slices of about this much line time (a USB-serial adapter's frame is 1 ms)
PACE_SLICE: Final = 0.002
#: a writer stall up to this long is made up (the line kept "sending" meanwhile); a longer one restarts
#: the line schedule and costs line time instead, so a stalled process never dumps a long burst
PACE_CATCH_UP: Final = 0.02
#: generic pyserial transports (socket, rfc2217, loop): read timeout, which bounds how fast close() returns
_POLL: Final = 0.05
#: while one failure streak lasts, "open_failed" is reported at most this often (every failure is counted)
OPEN_FAILED_REPORT_EVERY: Final = 10.0
_READ_SIZE: Final = 65536
_WRITE_SLICE: Final = 65536

_PARITIES: Final = {"N": serial.PARITY_NONE, "E": serial.PARITY_EVEN, "O": serial.PARITY_ODD,
                    "M": serial.PARITY_MARK, "S": serial.PARITY_SPACE}
_STOPBITS: Final = {1: serial.STOPBITS_ONE, 1.5: serial.STOPBITS_ONE_POINT_FIVE, 2: serial.STOPBITS_TWO}
_CSIZE: Final = {5: "CS5", 6: "CS6", 7: "CS7", 8: "CS8"}
#: query options pyserial 3.5's handlers accept, checked when the spec is parsed (not at the first open)
_URL_OPTIONS: Final = {"socket": {"logging"}, "loop": {"logging"},
                       "rfc2217": {"logging", "ign_set_control", "poll_modem", "timeout"}}
_LOG_LEVELS: Final = ("debug", "info", "warning", "error")


class LinkError(ValueError):
    """The link was misused: a malformed spec, impossible line settings, reuse after close.

    Never raised for I/O trouble; that is counted and reported through ``on_event``.
    """


@dataclass(frozen=True, slots=True)
class LinkSpec:
    """A parsed link spec.

    ``kind`` is ``"pty"`` (create a pseudo-terminal, publish it at ``target``),
    ``"url"`` (a pyserial URL, ``scheme`` says which) or ``"path"`` (a device path).
    """

    kind: str
    target: str
    scheme: str = ""

    def __str__(self) -> str:
        return f"pty:{self.target}" if self.kind == "pty" else self.target


def _known_schemes() -> list[str]:
    names: set[str] = set()
    for package_name in serial.protocol_handler_packages:
        try:
            package = __import__(package_name, fromlist=["__path__"])
        except ImportError:
            continue
        for mod in pkgutil.iter_modules(getattr(package, "__path__", [])):
            if mod.name.startswith("protocol_"):
                names.add(mod.name[len("protocol_"):])
    return sorted(names)


_FORMS: Final = ("a device path (/dev/ttyUSB0, run/fss.pty), a pyserial URL (socket://HOST:PORT, "
                 "rfc2217://HOST:PORT, loop://) or pty:PATH")


def parse_link_spec(spec: str) -> LinkSpec:
    """Check a link spec and say what it names.  Raises :class:`LinkError` (a ``ValueError``) if malformed."""
    if not isinstance(spec, str):
        raise LinkError(f"link spec must be a string, got {type(spec).__name__}: expected {_FORMS}")
    s = spec.strip()
    if not s:
        raise LinkError(f"empty link spec: expected {_FORMS}")
    if "\x00" in s or "\n" in s:
        raise LinkError(f"link spec {spec!r} contains a NUL or newline character")
    if s.lower().startswith("pty:"):
        path = s[4:]
        if not path or path.startswith("//"):
            raise LinkError(f"link spec {spec!r}: pty: needs the path to publish the pseudo-terminal at, "
                            f"e.g. pty:run/fss.pty (not a URL)")
        if path.endswith(("/", os.sep)):
            raise LinkError(f"link spec {spec!r}: pty: path {path!r} names a directory; give the symlink's "
                            f"file name, e.g. pty:{path}fss.pty")
        return LinkSpec("pty", path)
    if "://" in s:
        scheme = s.split("://", 1)[0].lower()
        known = _known_schemes()
        if scheme not in known:
            raise LinkError(f"link spec {spec!r}: unknown URL scheme {scheme!r}; pyserial handles "
                            f"{', '.join(k + '://' for k in known)}; for a pseudo-terminal write pty:PATH")
        if scheme in ("socket", "rfc2217"):
            try:
                parts = urlsplit(s)
                port = parts.port
            except ValueError as e:
                raise LinkError(f"link spec {spec!r}: expected {scheme}://HOST:PORT ({e})") from None
            if not parts.hostname or port is None or not 0 < port < 65536:
                raise LinkError(f"link spec {spec!r}: expected {scheme}://HOST:PORT with a port in 1..65535")
        options = _URL_OPTIONS.get(scheme)
        if options is not None:
            try:
                query = parse_qs(urlsplit(s).query, keep_blank_values=True, strict_parsing=False)
            except ValueError as e:
                raise LinkError(f"link spec {spec!r}: bad query string ({e})") from None
            for option, values in query.items():
                if option not in options:
                    allowed = ", ".join(sorted(options))
                    raise LinkError(f"link spec {spec!r}: {scheme}:// has no option {option!r} (it takes {allowed})")
                if option == "logging" and values[-1] not in _LOG_LEVELS:
                    raise LinkError(f"link spec {spec!r}: logging= takes one of {', '.join(_LOG_LEVELS)}")
                if option == "timeout":
                    try:
                        float(values[-1])
                    except ValueError:
                        raise LinkError(f"link spec {spec!r}: timeout= takes seconds, got {values[-1]!r}") from None
        return LinkSpec("url", s, scheme)
    return LinkSpec("path", s)


def _cb_error(what: str) -> None:
    import traceback
    sys.stderr.write(f"fsw.io.link: {what} raised (ignored, the link keeps running):\n{traceback.format_exc()}")


class _Port:
    """One open connection: a pyserial object, used through its file descriptor when it has one."""

    __slots__ = ("ser", "fd", "describe")

    def __init__(self, ser: serial.SerialBase, fd: int | None, describe: str) -> None:
        self.ser = ser
        self.fd = fd
        self.describe = describe


class Link:
    """One serial link.  See the module docstring; ``docs/links.md`` is the user guide.

    ``on_event(kind, detail)`` is called from a link thread for ``"connected"``,
    ``"disconnected"`` and (rate-limited) ``"open_failed"``; keep it short and
    thread-safe.  ``tx_buffer`` bounds the queued output in bytes (beyond it
    writes are dropped and counted) and ``rx_buffer`` bounds unread input held
    for :meth:`read` (the oldest bytes are dropped and counted).
    """

    def __init__(self, spec: str, *, name: str = "", baud: int = 115200, bytesize: int = 8, parity: str = "N",
                 stopbits: float = 1, pace: bool = False, reconnect_min: float = 0.05, reconnect_max: float = 2.0,
                 on_event: Callable[[str, str], None] | None = None,
                 tx_buffer: int = 1 << 20, rx_buffer: int = 1 << 22) -> None:
        self.spec = parse_link_spec(spec)
        if isinstance(baud, bool) or not isinstance(baud, int) or baud <= 0:
            raise LinkError(f"baud must be a positive integer, got {baud!r}")
        if bytesize not in _CSIZE:
            raise LinkError(f"bytesize must be 5, 6, 7 or 8, got {bytesize!r}")
        if not isinstance(parity, str) or parity.upper() not in _PARITIES:
            raise LinkError(f"parity must be one of N, E, O, M, S, got {parity!r}")
        if stopbits not in _STOPBITS:
            raise LinkError(f"stopbits must be 1, 1.5 or 2, got {stopbits!r}")
        if not 0 < reconnect_min <= reconnect_max:
            raise LinkError(f"need 0 < reconnect_min ({reconnect_min}) <= reconnect_max ({reconnect_max})")
        if tx_buffer <= 0 or rx_buffer <= 0:
            raise LinkError("tx_buffer and rx_buffer must be positive")
        self.name = name or str(self.spec)
        self.baud = baud
        self.bytesize = bytesize
        self.parity = parity.upper()
        self.stopbits = stopbits
        self.pace = bool(pace)
        self.reconnect_min = float(reconnect_min)
        self.reconnect_max = float(reconnect_max)
        #: bits on the wire per byte: start + data + parity + stop (8N1: 10)
        self.bits_per_byte: float = 1 + bytesize + (self.parity != "N") + stopbits
        self._on_event = on_event
        self._tx_cap = tx_buffer
        self._rx_cap = rx_buffer
        self._slice = max(1, int(PACE_SLICE * baud / self.bits_per_byte))

        self._lock = threading.Lock()
        self._rx_cond = threading.Condition(self._lock)
        self._tx_cond = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._inbox = bytearray()
        self._listener: Callable[[str, object], None] | None = None
        self._tx: deque[tuple[float, bytes]] = deque()
        self._tx_bytes = 0
        self._tx_busy = False
        self._port: _Port | None = None       # path/url mode: the open port
        self._pty_fd: int | None = None       # pty mode: the master, kept across peers
        self._pty_slave = ""
        self._io_fd: int | None = None        # descriptor writes go to while connected
        self._fast_fd: int | None = None      # descriptor unpaced writes may use directly
        self._gen = 0                         # bumped on every connect/disconnect
        self._connected = False
        self._detail = ""
        self._lost: str | None = None         # set by the writer when a write fails
        self._trouble = False                 # a failure or loss happened since the last connection
        self._fail_streak = 0
        self._fail_unreported = 0
        self._fail_reported_at = 0.0
        self._started = False
        self._closed = False
        self._threads: list[threading.Thread] = []
        self._wake_r = self._wake_w = -1
        self._stats = {"opens": 0, "reconnects": 0, "open_failures": 0, "disconnects": 0, "bytes_in": 0,
                       "bytes_out": 0, "write_drops": 0, "bytes_dropped": 0, "read_drops": 0}

    # -- public API -------------------------------------------------------------------------------------
    def __repr__(self) -> str:
        state = "closed" if self._closed else "connected" if self._connected else "down"
        return f"<Link {self.name!r} {self.spec} {self.baud} {self.bytesize}{self.parity}{self.stopbits:g} {state}>"

    def __enter__(self) -> "Link":
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def connected(self) -> bool:
        """True while the port is open (path/url) or a peer holds the pty's slave side (pty:)."""
        return self._connected

    @property
    def stats(self) -> dict[str, int]:
        """A snapshot of the counters: opens, reconnects, open_failures, disconnects, bytes_in, bytes_out,
        write_drops (write calls dropped), bytes_dropped, read_drops (bytes lost to a full inbox)."""
        with self._lock:
            return dict(self._stats)

    @property
    def pty_path(self) -> str:
        """pty: links: the slave device (e.g. ``/dev/pts/7``) behind the published symlink, or ""."""
        return self._pty_slave

    @property
    def tx_pending(self) -> int:
        """Bytes queued for output and not yet written (the paced backlog)."""
        with self._lock:
            return self._tx_bytes

    def open(self) -> None:
        """Open the port (or create the pty) and start the link threads.

        Never raises for a missing or unavailable port: the failure is counted
        and reported, and the link keeps retrying in the background.  Calling
        it again is a no-op; calling it after :meth:`close` is misuse.
        """
        with self._lock:
            if self._closed:
                raise LinkError(f"link {self.name!r} is closed; make a new Link")
            if self._started:
                return
            self._started = True
        if os.name == "posix":
            self._wake_r, self._wake_w = os.pipe()
            os.set_blocking(self._wake_r, False)
            os.set_blocking(self._wake_w, False)
        if self.spec.kind == "pty":
            if termios is None:
                raise LinkError(f"link {self.name!r}: pty: links need a POSIX system")
            self._create_pty()
            target = self._serve_pty
        else:
            self._try_open()
            target = self._serve_port
        for fn, suffix in ((target, "rx"), (self._writer, "tx")):
            t = threading.Thread(target=fn, name=f"link-{self.name}-{suffix}", daemon=True)
            self._threads.append(t)
            t.start()

    def read(self, timeout: float) -> bytes:
        """Whatever has arrived, waiting up to ``timeout`` seconds for the first byte; ``b""`` if nothing came.

        While a listener (the real-time runner) is installed, bytes go to it instead and this returns ``b""``.
        """
        with self._rx_cond:
            if not self._inbox and not self._closed and timeout > 0:
                self._rx_cond.wait_for(lambda: self._inbox or self._closed, timeout)
            data = bytes(self._inbox)
            self._inbox.clear()
        return data

    def write(self, data: bytes) -> None:
        """Queue ``data`` for the line; returns at once.

        Dropped (and counted in ``write_drops``/``bytes_dropped``) while the link
        is down or when the output queue already holds ``tx_buffer`` bytes.
        """
        if not data:
            return
        data = bytes(data)
        with self._lock:
            if not self._connected or self._closed or self._tx_bytes + len(data) > self._tx_cap:
                self._stats["write_drops"] += 1
                self._stats["bytes_dropped"] += len(data)
                return
            fd = self._fast_fd
            if fd is not None and self._tx and not self._tx_busy:
                # a backlog: queue behind it and push what the line takes now, from this thread, rather than
                # leave it all to the writer thread (which needs the GIL back after every write it makes)
                self._tx.append((time.monotonic(), data))
                self._tx_bytes += len(data)
                self._drain_locked(fd)
                if self._tx:
                    self._tx_cond.notify()
                return
            if fd is not None and not self._tx and not self._tx_busy:
                try:
                    n = os.write(fd, data)
                except (BlockingIOError, InterruptedError):
                    n = 0
                except OSError as e:
                    self._stats["write_drops"] += 1
                    self._stats["bytes_dropped"] += len(data)
                    self._signal_lost_locked(f"write failed: {e.strerror or e}")
                    return
                self._stats["bytes_out"] += n
                if n == len(data):
                    return
                data = data[n:]
            self._tx.append((time.monotonic(), data))
            self._tx_bytes += len(data)
            self._tx_cond.notify()

    def _drain_locked(self, fd: int) -> None:
        """Unpaced descriptor, lock held: write queued bytes, in order, until the descriptor takes no more."""
        q = self._tx
        while q:
            t, d = q[0]
            try:
                n = os.write(fd, d)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                self._stats["write_drops"] += len(q)
                self._stats["bytes_dropped"] += self._tx_bytes
                q.clear()
                self._tx_bytes = 0
                self._signal_lost_locked(f"write failed: {e.strerror or e}")
                return
            self._stats["bytes_out"] += n
            self._tx_bytes -= n
            if n < len(d):
                q[0] = (t, d[n:])
                return
            q.popleft()

    def close(self) -> None:
        """Stop the threads, close the port (pty: close the master and remove our symlink).  Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._connected = False
            self._fast_fd = None
            self._listener = None
            self._tx_cond.notify_all()
            self._rx_cond.notify_all()
        self._stop.set()
        self._wake()
        port = self._port
        if port is not None and port.fd is None:
            try:
                port.ser.cancel_read()
            except Exception:
                pass
        for t in self._threads:
            t.join(timeout=1.0)
        if port is not None:  # the writer may still sit in a blocking pyserial write: closing frees it
            self._close_port(port)
            self._port = None
        for t in self._threads:
            t.join(timeout=1.0)
        if self._pty_fd is not None:
            self._close_pty()
        for fd in (self._wake_r, self._wake_w):
            if fd >= 0:
                os.close(fd)
        self._wake_r = self._wake_w = -1

    def set_listener(self, listener: Callable[[str, object], None] | None) -> None:
        """Send this link's input and state changes to ``listener(kind, payload)`` instead of the inbox.

        ``kind`` is ``"data"`` (payload: bytes), ``"connected"`` or ``"disconnected"`` (payload: detail).
        Called from a link thread with the link's lock held: it must only hand the item on (e.g. put it
        in a queue).  Bytes already in the inbox go to the listener first, then ``"connected"`` if the link
        is up, so nothing is lost or reordered.  Used by :class:`fsw.io.runner.RealTimeRunner`.
        """
        with self._lock:
            if listener is not None and self._listener is not None:
                raise LinkError(f"link {self.name!r} already has a listener (is it used by another runner?)")
            self._listener = listener
            if listener is None:
                return
            if self._inbox:
                listener("data", bytes(self._inbox))
                self._inbox.clear()
            if self._connected:
                listener(CONNECTED, self._detail)

    # -- state changes --------------------------------------------------------------------------------
    def _emit(self, kind: str, detail: str) -> None:
        if self._on_event is not None:
            try:
                self._on_event(kind, detail)
            except Exception:
                _cb_error(f"on_event({kind!r}) of link {self.name!r}")

    def _set_connected(self, detail: str, fd: int | None, fast: bool) -> None:
        with self._lock:
            if self._closed:
                return
            self._connected = True
            self._detail = detail
            self._gen += 1
            self._lost = None
            self._io_fd = fd
            self._fast_fd = fd if fast and not self.pace else None
            if self._trouble:
                self._stats["reconnects"] += 1
            self._trouble = False
            self._fail_streak = self._fail_unreported = 0
            if self._listener is not None:
                self._listener(CONNECTED, detail)
        self._emit(CONNECTED, detail)

    def _set_disconnected(self, reason: str) -> None:
        with self._lock:
            was = self._connected
            self._connected = False
            self._fast_fd = self._io_fd = None
            self._gen += 1
            self._trouble = True
            if self._tx:
                self._stats["write_drops"] += len(self._tx)
                self._stats["bytes_dropped"] += self._tx_bytes
                self._tx.clear()
                self._tx_bytes = 0
            if was and not self._closed:
                self._stats["disconnects"] += 1
                if self._listener is not None:
                    self._listener(DISCONNECTED, reason)
            else:
                was = False
        if was:
            self._emit(DISCONNECTED, reason)

    def _open_failed(self, detail: str) -> None:
        now = time.monotonic()
        with self._lock:
            self._stats["open_failures"] += 1
            self._trouble = True
            self._fail_streak += 1
            report = self._fail_streak == 1 or now - self._fail_reported_at >= OPEN_FAILED_REPORT_EVERY
            if report:
                if self._fail_unreported:
                    detail += f" ({self._fail_unreported} more failed attempts not reported)"
                self._fail_unreported = 0
                self._fail_reported_at = now
            else:
                self._fail_unreported += 1
        if report:
            self._emit(OPEN_FAILED, detail)

    def _deliver(self, data: bytes) -> None:
        with self._lock:
            self._stats["bytes_in"] += len(data)
            if self._listener is not None:
                self._listener("data", data)
                return
            self._inbox += data
            over = len(self._inbox) - self._rx_cap
            if over > 0:
                del self._inbox[:over]
                self._stats["read_drops"] += over
            self._rx_cond.notify_all()

    def _signal_lost_locked(self, reason: str) -> None:
        if self._lost is None:
            self._lost = reason
        self._wake()

    def _wake(self) -> None:
        if self._wake_w >= 0:
            try:
                os.write(self._wake_w, b"!")
            except OSError:  # pipe full: a wake-up is already pending
                pass

    def _drain_wake(self) -> None:
        try:
            while os.read(self._wake_r, 4096):
                pass
        except OSError:
            pass

    # -- path / URL mode ------------------------------------------------------------------------------
    def _try_open(self) -> bool:
        target = self.spec.target
        try:
            ser = serial.serial_for_url(
                target, baudrate=self.baud, bytesize=self.bytesize, parity=_PARITIES[self.parity],
                stopbits=_STOPBITS[self.stopbits], timeout=_POLL, write_timeout=None, do_not_open=True)
            ser.open()
        except Exception as e:  # pyserial raises SerialException, OSError, ValueError ... for I/O trouble
            self._open_failed(f"cannot open {target}: {e}")
            return False
        fd = None
        if _PosixSerial is not None and isinstance(ser, _PosixSerial):
            fd = ser.fileno()
            os.set_blocking(fd, False)
        port = _Port(ser, fd, target)
        with self._lock:
            if self._closed:
                closing = True
            else:
                closing = False
                self._port = port
                self._stats["opens"] += 1
        if closing:
            self._close_port(port)
            return False
        self._set_connected(f"opened {target}", fd, fast=True)
        return True

    @staticmethod
    def _close_port(port: _Port) -> None:
        try:
            port.ser.close()
        except Exception:
            pass

    def _serve_port(self) -> None:
        delay = self.reconnect_min
        while not self._stop.is_set():
            if self._port is None:
                if self._stop.wait(delay):
                    return
                if not self._try_open():
                    delay = min(delay * 2, self.reconnect_max)
                    continue
                delay = self.reconnect_min
            port = self._port
            assert port is not None
            reason = self._pump_fd(port.fd, eof_means="device gone") if port.fd is not None \
                else self._pump_serial(port.ser)
            if reason is None:
                return
            with self._lock:
                self._port = None
            self._set_disconnected(f"{port.describe}: {reason}")
            self._close_port(port)  # after reporting: pyserial's socket:// close() sleeps 0.3 s
            delay = self.reconnect_min

    def _pump_serial(self, ser: serial.SerialBase) -> str | None:
        """Read a pyserial port without a usable descriptor; returns why it stopped (None: closing)."""
        stop = self._stop
        while not stop.is_set():
            if self._lost is not None:
                return self._lost
            try:
                data = ser.read(ser.in_waiting or 1)
                if data:
                    more = ser.in_waiting
                    if more:
                        data += ser.read(more)
            except Exception as e:  # SerialException, OSError, or errors from a port closed under us
                return None if stop.is_set() else f"read failed: {e}"
            if data:
                self._deliver(data)
        return None

    def _pump_fd(self, fd: int, eof_means: str) -> str | None:
        """Read a descriptor until it fails; returns why (None: the link is closing)."""
        wake = self._wake_r
        while True:
            try:
                ready = select.select([fd, wake], [], [])[0]
            except (OSError, ValueError) as e:
                return None if self._stop.is_set() else f"select failed: {e}"
            if wake in ready:
                self._drain_wake()
                if self._stop.is_set():
                    return None
                if self._lost is not None:
                    return self._lost
            if fd in ready:
                try:
                    data = os.read(fd, _READ_SIZE)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError as e:
                    if e.errno == errno.EIO:
                        return f"{eof_means} (EIO)"
                    return f"read failed: {e.strerror or e}"
                if not data:
                    return f"{eof_means} (end of file)"
                self._deliver(data)

    # -- pty mode ---------------------------------------------------------------------------------------
    def _create_pty(self) -> bool:
        path = self.spec.target
        master = -1
        try:
            master, slave = os.openpty()
            try:
                slave_name = os.ttyname(slave)
                self._configure_slave(slave)
            finally:
                os.close(slave)  # the peer opens it; the master reads EIO until then
            os.set_blocking(master, False)
            parent = os.path.dirname(path)
            if parent:
                os.makedirs(parent, exist_ok=True)
            if os.path.lexists(path) and not os.path.islink(path):
                raise FileExistsError(errno.EEXIST, "exists and is not a symlink; not replacing it", path)
            tmp = f"{path}.{os.getpid()}.{id(self):x}.tmp"
            if os.path.lexists(tmp):
                os.unlink(tmp)
            os.symlink(slave_name, tmp)
            os.replace(tmp, path)  # atomic: a stale symlink is replaced, never missing in between
        except OSError as e:
            if master >= 0:
                os.close(master)
            self._open_failed(f"cannot publish a pseudo-terminal at {path}: {e}")
            return False
        with self._lock:
            self._pty_fd = master
            self._pty_slave = slave_name
            self._stats["opens"] += 1
        return True

    def _configure_slave(self, fd: int) -> None:
        """Raw mode (no echo, no line editing) and the configured line settings, for whoever opens it."""
        tty.setraw(fd)
        attrs = termios.tcgetattr(fd)
        cflag = attrs[2] & ~(termios.CSIZE | termios.PARENB | termios.PARODD | termios.CSTOPB)
        cflag |= getattr(termios, _CSIZE[self.bytesize]) | termios.CLOCAL | termios.CREAD
        if self.parity in "EOMS":
            cflag |= termios.PARENB | (termios.PARODD if self.parity in "OM" else 0)
        if self.stopbits != 1:
            cflag |= termios.CSTOPB
        attrs[2] = cflag
        speed = getattr(termios, f"B{self.baud}", None)
        if speed is not None:  # a pty ignores it, but stty and the peer see the configured rate
            attrs[4] = attrs[5] = speed
        termios.tcsetattr(fd, termios.TCSANOW, attrs)

    def _close_pty(self) -> None:
        fd, self._pty_fd = self._pty_fd, None
        path = self.spec.target
        try:  # remove the symlink only if it is still ours (another instance may have taken the name)
            if os.path.islink(path) and os.readlink(path) == self._pty_slave:
                os.unlink(path)
        except OSError:
            pass
        if fd is not None:
            os.close(fd)

    def _probe_peer(self, fd: int) -> tuple[bool, bytes]:
        """Is the slave side open?  A master with no slave open polls readable and reads EIO."""
        try:
            if not select.select([fd], [], [], 0)[0]:
                return True, b""
            return True, os.read(fd, _READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return True, b""
        except OSError:
            return False, b""

    def _serve_pty(self) -> None:
        delay = self.reconnect_min
        while not self._stop.is_set():
            if self._pty_fd is None:
                if self._stop.wait(delay):
                    return
                if not self._create_pty():
                    delay = min(delay * 2, self.reconnect_max)
                    continue
                delay = self.reconnect_min
            fd = self._pty_fd
            assert fd is not None
            attached, data = self._probe_peer(fd)
            if not attached:
                # nothing to block on until someone opens the slave: look again shortly
                if self._stop.wait(self.reconnect_min):
                    return
                continue
            self._set_connected(f"peer opened {self._pty_slave} ({self.spec.target})", fd, fast=True)
            if data:
                self._deliver(data)
            reason = self._pump_fd(fd, eof_means="peer closed the pseudo-terminal")
            if reason is None:
                return
            try:  # discard what was queued for the departed peer so the next one starts clean
                termios.tcflush(fd, termios.TCIOFLUSH)
            except termios.error:
                pass
            self._set_disconnected(f"{self.spec.target}: {reason}; waiting for a peer to reopen {self._pty_slave}")

    # -- output -----------------------------------------------------------------------------------------
    def _take(self, limit: int) -> tuple[bytes, float]:
        """Pop up to ``limit`` queued bytes; returns them and when the first of them was queued."""
        q = self._tx
        t0 = q[0][0]
        parts: list[bytes] = []
        n = 0
        while q and n < limit:
            t, d = q[0]
            room = limit - n
            if len(d) <= room:
                q.popleft()
                parts.append(d)
                n += len(d)
            else:
                parts.append(d[:room])
                q[0] = (t, d[room:])
                n = limit
        self._tx_bytes -= n
        return b"".join(parts), t0

    def _writer(self) -> None:
        pacer = LinePacer(self.baud, self.bits_per_byte) if self.pace else None  # type: ignore[arg-type]
        pacer_gen = -1
        limit = self._slice if pacer is not None else _WRITE_SLICE
        while True:
            with self._lock:
                while not self._tx and not self._closed:
                    self._tx_cond.wait()
                if self._closed:
                    return
                fast_fd = self._fast_fd
                if fast_fd is None:
                    chunk, queued_at = self._take(limit)
                    gen, fd, port = self._gen, self._io_fd, self._port
                    self._tx_busy = True
                else:  # unpaced descriptor: written under the lock, as write() does, so both keep the order
                    self._drain_locked(fast_fd)
            if fast_fd is not None:
                if self._tx:
                    try:  # wait for room, holding neither the lock nor any bytes
                        select.select([], [fast_fd], [], 0.05)
                    except (OSError, ValueError):  # closed under us: the state change follows
                        pass
                continue
            ok = True
            if pacer is not None:
                if gen != pacer_gen:  # a new connection starts with an idle line
                    pacer.busy_until = 0.0
                    pacer_gen = gen
                was_idle = pacer.busy_until <= queued_at
                # the bytes reach the far end when their last stop bit would: release them then, never earlier
                _, end = pacer.reserve(len(chunk), queued_at)
                ok = self._sleep_until(end)
                released = time.monotonic()
                if was_idle or released - end > PACE_CATCH_UP:
                    # measure the line from when bytes really left: no burst to make up for a late start
                    pacer.busy_until = max(pacer.busy_until, released)
            if ok:
                ok = self._write_all(chunk, gen, fd, port)
            with self._lock:
                self._tx_busy = False
                if ok:
                    self._stats["bytes_out"] += len(chunk)
                elif not self._closed:
                    self._stats["write_drops"] += 1
                    self._stats["bytes_dropped"] += len(chunk)

    def _sleep_until(self, t: float) -> bool:
        while True:
            left = t - time.monotonic()
            if left <= 0:
                return True
            if self._stop.wait(left):
                return False

    def _write_all(self, data: bytes, gen: int, fd: int | None, port: _Port | None) -> bool:
        view = memoryview(data)
        if fd is not None:
            while view:
                if self._gen != gen or self._stop.is_set():
                    return False
                try:
                    n = os.write(fd, view)
                    view = view[n:]
                except (BlockingIOError, InterruptedError):
                    try:  # the peer is not reading: wait for room, looking up now and then for a state change
                        select.select([], [fd], [], 0.05)
                    except (OSError, ValueError):
                        return False
                except OSError as e:
                    with self._lock:
                        if self._gen == gen:
                            self._signal_lost_locked(f"write failed: {e.strerror or e}")
                    return False
            return True
        if port is None or self._gen != gen:
            return False
        try:
            port.ser.write(data)
            return True
        except Exception as e:  # SerialException, OSError, or a port closed under us
            with self._lock:
                if self._gen == gen and not self._closed:
                    self._signal_lost_locked(f"write failed: {e}")
            return False
