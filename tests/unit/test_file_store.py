"""The durable store on disk (fsw.io.state.FileStore): atomic replace, and damage that reads as missing.

* round trip, keys as file names (no traversal), missing keys;
* the protocol: temporary file, fsync of the file, rename, fsync of the directory, in that order;
* a process killed at every step of a save leaves the old record or the new one, never anything else
  (in-process with an exception, and in a real child process that ``os._exit``s mid-save);
* a truncated, extended or corrupted record file reads as missing through the core's sealed records,
  so the deploy manager reads the unit as UNKNOWN.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsw.core.deploy import DeployManager, new_record, record_key, validate_record
from fsw.core.state import load_record, save_record, seal
from fsw.io.state import KEY_RE, FileStore

STEPS = ["open", "write", "fsync", "rename", "dirsync", "done"]


class Killed(BaseException):
    """Stands for the process dying at a step (BaseException: nothing on the way may swallow it)."""


def test_round_trip_and_missing(tmp_path: Path) -> None:
    s = FileStore(tmp_path / "state")
    assert s.load("deploy_alpine") is None
    s.save("deploy_alpine", b"\x00\x01abc")
    assert s.load("deploy_alpine") == b"\x00\x01abc"
    s.save("deploy_alpine", b"new")
    assert s.load("deploy_alpine") == b"new"
    assert s.keys() == ["deploy_alpine"]
    assert s.writes == 2
    # a second store on the same directory (a restart) sees the same data
    assert FileStore(tmp_path / "state").load("deploy_alpine") == b"new"


@pytest.mark.parametrize("key", ["", ".hidden", "../escape", "a/../b", "/a", "a/", "a//b", "a/.b", "a~b",
                                 "a\\b", "a" * 200, "x..y", "nul\x00", 7])
def test_keys_that_are_not_safe_file_names_are_refused(tmp_path: Path, key) -> None:
    s = FileStore(tmp_path)
    with pytest.raises(ValueError):
        s.save(key, b"x")
    with pytest.raises(ValueError):
        s.load(key)


def test_namespaced_keys_are_stored_flat_and_listed_back(tmp_path: Path) -> None:
    """The packet stores keep their records as ``pus15/<store>/r<n>``: one flat file each, listed by key."""
    s = FileStore(tmp_path)
    s.save("pus15/3/r12", b"a")
    s.save("pus15/3/m", b"b")
    s.save("pus153/m", b"c")
    assert {p.name for p in tmp_path.iterdir()} == {"pus15~3~m.rec", "pus15~3~r12.rec", "pus153~m.rec"}
    again = FileStore(tmp_path)
    assert again.keys() == ["pus15/3/m", "pus15/3/r12", "pus153/m"]
    assert (again.load("pus15/3/r12"), again.load("pus15/3/m"), again.load("pus15/3/x")) == (b"a", b"b", None)


def test_save_follows_the_protocol_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        import stat
        calls.append("fsync-dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "fsync-file")
        real_fsync(fd)

    def replace(a, b) -> None:
        calls.append(f"rename {Path(a).name} -> {Path(b).name}")
        assert Path(a).read_bytes() == b"payload", "the temporary file is complete before the rename"
        real_replace(a, b)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    FileStore(tmp_path).save("k", b"payload")
    assert calls[0] == "fsync-file"
    assert calls[1].startswith("rename .k.rec.") and calls[1].endswith(".tmp -> k.rec")
    assert calls[2] == "fsync-dir"
    assert len(calls) == 3


@pytest.mark.parametrize("step", STEPS)
def test_killed_at_every_step_leaves_old_or_new(tmp_path: Path, step: str) -> None:
    old, new = seal({"state": "SAFE"}), seal({"state": "FIRING"})
    FileStore(tmp_path).save("deploy_alpine", old)

    def hook(s: str, key: str) -> None:
        if s == step:
            raise Killed(step)

    with pytest.raises(Killed):
        FileStore(tmp_path, step_hook=hook).save("deploy_alpine", new)
    after = FileStore(tmp_path)  # restart
    got = after.load("deploy_alpine")
    expect_new = STEPS.index(step) > STEPS.index("rename")
    assert got == (new if expect_new else old)
    assert load_record(after, "deploy_alpine") == ({"state": "FIRING"} if expect_new else {"state": "SAFE"})
    assert not list(tmp_path.glob("*.tmp"))


CHILD = r"""
import os, sys
sys.path.insert(0, sys.argv[1])
from fsw.io.state import FileStore
from fsw.core.state import seal
step = sys.argv[3]
def hook(s, key):
    if s == step:
        os._exit(9)   # no cleanup, no flush: the process just stops
FileStore(sys.argv[2], step_hook=hook).save("deploy_lupine", seal({"state": "RELEASED"}))
os._exit(0)
"""


@pytest.mark.parametrize("step", STEPS)
def test_child_process_dies_at_every_step(tmp_path: Path, step: str) -> None:
    root = str(Path(__file__).resolve().parents[2])
    FileStore(tmp_path).save("deploy_lupine", seal({"state": "FIRING"}))
    r = subprocess.run([sys.executable, "-c", CHILD, root, str(tmp_path), step], timeout=30)
    assert r.returncode == 9
    leftovers = list(tmp_path.glob("*.tmp"))
    if step in ("write", "fsync", "rename"):
        assert leftovers, "the dead process left its temporary file behind"
    store = FileStore(tmp_path)  # the restart removes it and reads a whole record
    assert not list(tmp_path.glob("*.tmp"))
    assert store.stale_removed == len(leftovers)
    expect_new = STEPS.index(step) > STEPS.index("rename")
    assert load_record(store, "deploy_lupine") == {"state": "RELEASED" if expect_new else "FIRING"}


def test_failed_write_raises_and_keeps_the_old_value(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = FileStore(tmp_path)
    s.save("k", b"old")

    def no_space(fd: int, data) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", no_space)
    with pytest.raises(OSError):
        s.save("k", b"new")
    monkeypatch.undo()
    assert s.load("k") == b"old"
    assert not list(tmp_path.glob("*.tmp"))


def test_unreadable_record_reads_as_missing(tmp_path: Path) -> None:
    s = FileStore(tmp_path)
    (tmp_path / "k.rec").mkdir()  # a directory where the file should be: read fails
    assert s.load("k") is None and s.read_errors == 1


def _record_file(tmp_path: Path) -> tuple[FileStore, Path, bytes]:
    s = FileStore(tmp_path, fsync=False)  # durability is not what these tests are about
    rec = new_record("ALPINE")
    save_record(s, record_key("ALPINE"), rec)
    path = s.path(record_key("ALPINE"))
    return s, path, path.read_bytes()


def test_truncated_record_reads_as_missing(tmp_path: Path) -> None:
    s, path, good = _record_file(tmp_path)
    for n in range(len(good)):
        path.write_bytes(good[:n])
        assert load_record(s, record_key("ALPINE")) is None, n
    path.write_bytes(good)
    assert validate_record(load_record(s, record_key("ALPINE")), "ALPINE") == new_record("ALPINE")


@pytest.fixture(scope="module")
def record_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[FileStore, Path, bytes]:
    return _record_file(tmp_path_factory.mktemp("corrupt"))


@settings(max_examples=300, deadline=None)
@given(pos=st.integers(min_value=0), value=st.integers(min_value=1, max_value=255), extra=st.binary(max_size=8))
def test_corrupted_record_reads_as_missing(record_file: tuple[FileStore, Path, bytes], pos: int, value: int,
                                           extra: bytes) -> None:
    """Any one changed byte, or bytes appended, is caught by the record's length and CRC."""
    s, path, good = record_file
    bad = bytearray(good)
    bad[pos % len(bad)] ^= value
    path.write_bytes(bytes(bad))
    assert load_record(s, record_key("ALPINE")) is None
    if extra:
        path.write_bytes(good + extra)
        assert load_record(s, record_key("ALPINE")) is None


def test_well_sealed_but_wrong_content_is_rejected_by_the_deploy_manager() -> None:
    """A record that unseals but is not a valid deploy record (other unit, unknown state ...) is corrupt."""
    good = new_record("ALPINE")
    assert validate_record(good, "ALPINE") == good
    for bad in ({**good, "unit": "LUPINE"}, {**good, "state": "ARMED"}, {**good, "v": 2}, {**good, "attempts": -1},
                {**good, "attempts": True}, {**good, "fired_at": "yesterday"}, {**good, "actuator": "C"},
                [good], "SAFE", None):
        assert validate_record(bad, "ALPINE") is None, bad


def test_key_pattern_covers_the_deploy_keys() -> None:
    assert all(KEY_RE.match(record_key(u)) for u in ("ALPINE", "LUPINE"))
    assert DeployManager  # the manager reads these keys through the StateStore protocol
