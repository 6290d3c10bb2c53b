"""Serial links over real pseudo-terminals, TCP and pyserial's loopback (fsw.io.link)."""

from __future__ import annotations

import os
import select
import socket
import threading
import time
from pathlib import Path

import pytest
import serial

from fsw.io.link import PACE_CATCH_UP, PACE_SLICE, Link, LinkError, LinkSpec, parse_link_spec

from .conftest import EventLog, machine_loaded, raw_peer, read_exactly, wait_until

pytestmark = pytest.mark.bench

PAYLOAD = bytes(range(256)) * 4


# -- specs ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("spec, expected", [
    ("/dev/ttyUSB0", LinkSpec("path", "/dev/ttyUSB0")),
    ("run/fss.pty", LinkSpec("path", "run/fss.pty")),
    ("socket://127.0.0.1:5000", LinkSpec("url", "socket://127.0.0.1:5000", "socket")),
    ("rfc2217://bench-host:2217?timeout=1", LinkSpec("url", "rfc2217://bench-host:2217?timeout=1", "rfc2217")),
    ("loop://", LinkSpec("url", "loop://", "loop")),
    ("pty:run/fss.pty", LinkSpec("pty", "run/fss.pty")),
])
def test_good_specs_parse(spec: str, expected: LinkSpec) -> None:
    assert parse_link_spec(spec) == expected
    assert str(parse_link_spec(spec)) == spec


@pytest.mark.parametrize("spec, words", [
    ("", "empty link spec"),
    ("   ", "empty link spec"),
    ("pty:", "pty: needs the path"),
    ("pty:run/", "names a directory"),
    ("bogus://x", "unknown URL scheme 'bogus'"),
    ("socket://127.0.0.1", "socket://HOST:PORT"),
    ("socket://:5000", "socket://HOST:PORT"),
    ("socket://host:http", "socket://HOST:PORT"),
    ("socket://host:70000", "socket://HOST:PORT"),
    ("rfc2217://host:0", "port in 1..65535"),
    ("socket://host:1?speed=9600", "has no option 'speed'"),
    ("loop://?logging=loud", "logging= takes one of"),
    ("/dev/tty\x00S0", "NUL"),
])
def test_bad_specs_raise_clear_errors(spec: str, words: str) -> None:
    with pytest.raises(LinkError, match=words.replace("?", r"\?").replace(".", r"\.")) as info:
        parse_link_spec(spec)
    assert isinstance(info.value, ValueError)
    with pytest.raises(LinkError):
        Link(spec)


@pytest.mark.parametrize("kwargs, words", [
    ({"baud": 0}, "baud"), ({"baud": 9600.5}, "baud"), ({"bytesize": 9}, "bytesize"),
    ({"parity": "X"}, "parity"), ({"stopbits": 3}, "stopbits"),
    ({"reconnect_min": 0}, "reconnect_min"), ({"reconnect_min": 3.0, "reconnect_max": 2.0}, "reconnect_max"),
])
def test_bad_line_settings_raise(kwargs: dict, words: str) -> None:
    with pytest.raises(LinkError, match=words):
        Link("loop://", **kwargs)


def test_bits_per_byte_follow_line_settings() -> None:
    assert Link("loop://").bits_per_byte == 10
    assert Link("loop://", bytesize=7, parity="E", stopbits=2).bits_per_byte == 11


# -- loop:// and socket:// ------------------------------------------------------------------------------
def test_loop_round_trip() -> None:
    log = EventLog()
    with Link("loop://", on_event=log) as link:
        assert link.connected and log.kinds() == ["connected"]
        for i in range(0, len(PAYLOAD), 100):
            link.write(PAYLOAD[i:i + 100])
        assert read_exactly(link, len(PAYLOAD)) == PAYLOAD
        assert link.read(0.01) == b""
        st = link.stats
    assert st["bytes_out"] == st["bytes_in"] == len(PAYLOAD)
    assert st["opens"] == 1 and st["write_drops"] == 0 and st["open_failures"] == 0


class EchoServer:
    """A TCP serial server on 127.0.0.1 that echoes; it can drop the current client."""

    def __init__(self, port: int = 0) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.client: socket.socket | None = None
        self._stop = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            self.client = conn
            with conn:
                while True:
                    try:
                        data = conn.recv(65536)
                    except OSError:
                        break
                    if not data:
                        break
                    conn.sendall(data)

    def drop_client(self) -> None:
        if self.client is not None:
            try:
                self.client.shutdown(socket.SHUT_RDWR)
            except OSError:  # the client already left
                pass

    def close(self) -> None:
        self._stop = True
        self.drop_client()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accept() in the server thread
        except OSError:
            pass
        self.sock.close()
        self.thread.join(2)


def test_socket_round_trip_and_reconnect_after_server_drops_us() -> None:
    server = EchoServer()
    log = EventLog()
    link = Link(f"socket://127.0.0.1:{server.port}", reconnect_min=0.01, reconnect_max=0.1, on_event=log)
    try:
        link.open()
        assert link.connected
        link.write(PAYLOAD)
        assert read_exactly(link, len(PAYLOAD)) == PAYLOAD
        server.drop_client()
        assert log.wait_for("disconnected"), log.events
        assert log.wait_for("connected", 2), log.events
        assert wait_until(lambda: server.accepted == 2)
        link.write(b"again")
        assert read_exactly(link, 5) == b"again"
        st = link.stats
        assert st["disconnects"] == 1 and st["reconnects"] == 1 and st["opens"] == 2
    finally:
        link.close()
        server.close()


def _free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_socket_server_absent_at_start_then_appears() -> None:
    port = _free_tcp_port()
    log = EventLog()
    link = Link(f"socket://127.0.0.1:{port}", reconnect_min=0.01, reconnect_max=0.05, on_event=log)
    server = None
    try:
        link.open()  # must not raise
        assert not link.connected
        assert log.kinds()[0] == "open_failed" and "127.0.0.1" in log.last("open_failed")
        link.write(b"lost")  # dropped and counted, not queued for later
        server = EchoServer(port)
        assert log.wait_for("connected"), log.events
        link.write(b"hello")
        assert read_exactly(link, 5) == b"hello"
        st = link.stats
        assert st["reconnects"] == 1 and st["open_failures"] >= 1
        assert st["write_drops"] == 1 and st["bytes_dropped"] == 4
    finally:
        link.close()
        if server:
            server.close()


# -- pty: -------------------------------------------------------------------------------------------------
def test_pty_link_publishes_a_symlink_pyserial_can_open(pty_dir: Path) -> None:
    path = pty_dir / "fss.pty"
    log = EventLog()
    link = Link(f"pty:{path}", baud=921600, on_event=log)
    link.open()
    try:
        assert path.is_symlink() and os.readlink(path) == link.pty_path
        assert link.pty_path.startswith("/dev/")
        assert not link.connected  # nobody holds the other end yet
        link.write(b"nobody listens")
        assert link.stats["write_drops"] == 1
        with serial.Serial(str(path), 921600, timeout=2) as port:
            assert log.wait_for("connected"), log.events
            assert str(path) in log.last("connected")
            port.write(b"to the link")
            assert read_exactly(link, 11) == b"to the link"
            link.write(b"to pyserial")
            assert port.read(11) == b"to pyserial"
        assert log.wait_for("disconnected"), log.events
    finally:
        link.close()
    assert not os.path.lexists(path), "close() removes the published symlink"


def test_pty_link_replaces_a_stale_symlink_but_never_a_file(pty_dir: Path) -> None:
    stale = pty_dir / "stale.pty"
    os.symlink("/dev/pts/does-not-exist", stale)
    with Link(f"pty:{stale}") as link:
        assert os.readlink(stale) == link.pty_path
    assert not os.path.lexists(stale)

    taken = pty_dir / "taken.pty"
    taken.write_text("not a tty")
    log = EventLog()
    link = Link(f"pty:{taken}", reconnect_min=0.01, reconnect_max=0.02, on_event=log)
    try:
        link.open()  # never raises for an unusable port
        assert log.kinds() == ["open_failed"] and "not a symlink" in log.last("open_failed")
        assert taken.read_text() == "not a tty"
        assert wait_until(lambda: link.stats["open_failures"] >= 3)
        assert log.count("open_failed") == 1, "open_failed is rate-limited"
        taken.unlink()
        assert wait_until(lambda: taken.is_symlink()), "published once the name is free"
        assert link.stats["opens"] == 1
    finally:
        link.close()


def test_missing_port_at_start_reconnects_once_it_appears(pty_dir: Path) -> None:
    path = pty_dir / "late.pty"
    log = EventLog()
    link = Link(str(path), reconnect_min=0.01, reconnect_max=0.05, on_event=log)
    server = Link(f"pty:{path}")
    try:
        link.open()  # the port does not exist: no exception
        assert not link.connected
        assert log.kinds() == ["open_failed"]
        assert "late.pty" in log.last("open_failed")
        server.open()
        assert log.wait_for("connected"), log.events
        assert link.connected
        st = link.stats
        assert st["opens"] == 1 and st["reconnects"] == 1 and st["open_failures"] >= 1
        assert wait_until(lambda: server.connected)
        link.write(b"ping")
        assert read_exactly(server, 4) == b"ping"
        server.write(b"pong")
        assert read_exactly(link, 4) == b"pong"
    finally:
        link.close()
        server.close()


def test_pty_master_survives_peer_close_and_reopen(pty_dir: Path) -> None:
    """EIO on the master when the slave closes means "peer gone": keep the master, wait for a reopen."""
    path = pty_dir / "dev.pty"
    log = EventLog()
    dev = Link(f"pty:{path}", reconnect_min=0.01, on_event=log)
    dev.open()
    try:
        with raw_peer(path) as fd:
            assert log.wait_for("connected")
            os.write(fd, b"first")
            assert read_exactly(dev, 5) == b"first"
        assert log.wait_for("disconnected"), log.events
        assert "peer closed" in log.last("disconnected")
        assert not dev.connected and path.is_symlink() and os.path.exists(path)
        dev.write(b"stale")  # dropped while nobody listens, never delivered to the next peer
        with raw_peer(path) as fd:
            assert log.wait_for("connected", 2), log.events
            os.write(fd, b"second")
            assert read_exactly(dev, 6) == b"second"
            dev.write(b"fresh")
            assert os.read(fd, 100) == b"fresh"
        assert log.wait_for("disconnected", 2)
        st = dev.stats
        assert st["opens"] == 1, "the pseudo-terminal itself was never recreated"
        assert st["disconnects"] == 2 and st["reconnects"] == 1 and st["write_drops"] == 1
    finally:
        dev.close()


def test_device_that_disappears_is_reopened_with_backoff(pty_dir: Path) -> None:
    path = pty_dir / "usb.pty"
    log = EventLog()
    server = Link(f"pty:{path}")
    server.open()
    client = Link(str(path), reconnect_min=0.01, reconnect_max=0.04, on_event=log)
    try:
        client.open()
        assert client.connected
        server.close()  # the device goes away: its pty and symlink vanish
        assert log.wait_for("disconnected"), log.events
        t_down = log.time_of("disconnected")  # reported before the first back-off wait starts
        assert wait_until(lambda: client.stats["open_failures"] >= 5)
        # retries wait 0.01, 0.02, 0.04, 0.04, 0.04: five failures cannot come sooner than this
        assert time.monotonic() - t_down >= 0.01 + 0.02 + 0.04 + 0.04 + 0.04
        assert log.count("open_failed") == 1
        server = Link(f"pty:{path}")
        server.open()
        assert log.wait_for("connected", 2), log.events
        assert wait_until(lambda: server.connected)
        client.write(b"back")
        assert read_exactly(server, 4) == b"back"
        st = client.stats
        assert st["disconnects"] == 1 and st["reconnects"] == 1 and st["opens"] == 2
    finally:
        client.close()
        server.close()


def test_close_is_idempotent_and_reopen_is_misuse() -> None:
    link = Link("loop://")
    link.open()
    link.open()  # no-op
    link.close()
    link.close()
    assert not link.connected
    link.write(b"x")  # after close: dropped, counted, no exception
    assert link.stats["write_drops"] == 1
    with pytest.raises(LinkError, match="closed"):
        link.open()


def test_a_failing_on_event_callback_does_not_stop_the_link(capsys: pytest.CaptureFixture) -> None:
    def bad(kind: str, detail: str) -> None:
        raise RuntimeError("callback bug")

    with Link("loop://", on_event=bad) as link:
        link.write(b"still works")
        assert read_exactly(link, 11) == b"still works"
    assert "callback bug" in capsys.readouterr().err


# -- pacing ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("baud", [115200, 921600])
def test_paced_link_holds_the_line_rate(pty_dir: Path, baud: int) -> None:
    """Saturate a paced link for ~0.6 s and time every read at a raw reader.

    * Never above the line rate, strictly: a UART handed N bytes at ``t_write``
      cannot have delivered them before ``t_write + N * byte_time``.  This must
      hold at every read (the arrival curve never crosses the line-rate curve),
      with each read timed after it returned, so a violation proves the link
      released bytes too early.
    * Within 2 % below it: N bytes over ``t_last - t_write``, and reader-only,
      the bytes after the first read over ``t_last - t_first``.
    * The reader-only figure can exceed the line rate only by the link's
      designed delivery granularity: one slice of PACE_SLICE, plus at most
      PACE_CATCH_UP made up after a writer stall, over the window.
    """
    path = pty_dir / "paced.pty"
    rate = baud / 10
    byte_time = 1 / rate
    n_total = int(rate * 0.6)
    link = Link(f"pty:{path}", baud=baud, pace=True, reconnect_min=0.01)
    link.open()
    try:
        with raw_peer(path) as fd:
            os.set_blocking(fd, False)
            assert wait_until(lambda: link.connected)
            frames = [PAYLOAD[:64]] * (n_total // 64) + [PAYLOAD[:n_total % 64]]
            t_write = time.monotonic()
            for f in frames:
                link.write(f)
            assert link.tx_pending > n_total * 0.9, "the sender saturates the line"
            got = 0
            arrivals: list[tuple[float, int]] = []
            while got < n_total:
                if not select.select([fd], [], [], 3.0)[0]:
                    break
                got += len(os.read(fd, 65536))
                arrivals.append((time.monotonic(), got))
    finally:
        link.close()
    assert got == n_total, f"received {got} of {n_total} bytes"
    t_first, n_first = arrivals[0]
    t_last = arrivals[-1][0]
    from_write = n_total / (t_last - t_write)
    reader_only = (n_total - n_first) / (t_last - t_first)
    print(f"\n{baud} baud: line {rate:.0f} B/s; from write() {from_write:.1f} B/s ({from_write / rate:.5f}); "
          f"reader-only {reader_only:.1f} B/s ({reader_only / rate:.5f}); {len(arrivals)} reads, "
          f"first read {n_first} B")
    # never above the line rate
    early = [(t - t_write, n) for t, n in arrivals if n * byte_time > t - t_write]
    assert not early, f"bytes arrived before the line could carry them: {early[:3]}"
    granularity = PACE_SLICE + PACE_CATCH_UP
    assert t_last - t_first >= (n_total - n_first) * byte_time - granularity
    # and within 2 % below it (a little more slack only when the machine is overloaded)
    lower = 0.95 if machine_loaded() else 0.98
    assert from_write >= lower * rate
    assert reader_only >= lower * rate
