"""``ground plot``: parameters over time into a PNG with limit lines."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from fsw.dictionary import load_dictionary
from ground.archive import Archive, ArchiveWriter
from ground.archive_query import locate_parameter
from ground.decoding import PacketDecoder
from ground.plot import PlotError, PlotSeries, plot_series
from ground.replay import ingest_capture
from tests.unit.archive_data import T0, build_stream, run_ground

pytest.importorskip("matplotlib")

D = load_dictionary()
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("plot") / "a.db"
    with ArchiveWriter(path, threaded=False) as w:
        ingest_capture(w, b"".join(build_stream(D).packets), PacketDecoder(D), "file:t")
    return path


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_two_parameters_with_limit_lines(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "temps.png"
    with Archive(db) as a:
        series = [PlotSeries(locate_parameter(D, n), a.param_series(locate_parameter(D, n)))
                  for n in ("FSS_TEMP_VBB", "FSS_BATT_V")]
    drawn = plot_series(series, out, D, width=8, height=4, dpi=100)
    assert _png_size(out) == (800, 400)
    assert out.stat().st_size > 10_000  # lines, labels and a legend, not an empty canvas
    assert drawn["FSS_TEMP_VBB"] == {"samples": 60, "unit": "degC",
                                     "limits": [("warn low", -40.0), ("warn high", 45.0), ("alarm low", -55.0),
                                                ("alarm high", 60.0)]}
    assert drawn["FSS_BATT_V"]["samples"] == 60 and len(drawn["FSS_BATT_V"]["limits"]) == 4


def test_enumerated_parameter_and_empty_range(db: Path, tmp_path: Path) -> None:
    loc = locate_parameter(D, "FSS_MODE")
    with Archive(db) as a:
        drawn = plot_series([PlotSeries(loc, a.param_series(loc))], tmp_path / "mode.png", D)
        assert drawn["FSS_MODE"]["samples"] == 60 and drawn["FSS_MODE"]["limits"] == []
        empty = a.param_series(loc, T0 + 1e6, T0 + 2e6)
    with pytest.raises(PlotError, match="no samples of FSS_MODE"):
        plot_series([PlotSeries(loc, empty)], tmp_path / "none.png", D)
    assert not (tmp_path / "none.png").exists()


def test_plot_cli(db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "cli.png"
    code, text, err = run_ground(monkeypatch, capsys, "plot", "FSS_TEMP_VBB", "FSS_TEMP_EBOX", "--db", str(db),
                                 "--out", str(out), "--start", str(T0 + 10), "--end", D.epoch.iso(T0 + 50),
                                 "--title", "$\\alpha$ not math")
    assert code == 0, err
    assert "FSS_TEMP_VBB (41 values, 4 limit lines)" in text
    assert _png_size(out) == (1000, 500)
    code, _, err = run_ground(monkeypatch, capsys, "plot", "NOPE_PARAM", "--db", str(db), "--out", str(out))
    assert code == 2 and err.startswith("ground: unknown parameter") and "Traceback" not in err
    code, _, err = run_ground(monkeypatch, capsys, "plot", "FSS_MODE", "--db", str(db), "--out", str(out),
                              "--start", "1e9")
    assert code == 2 and "no samples" in err
    code, _, err = run_ground(monkeypatch, capsys, "plot", "FSS_MODE", "--db", str(tmp_path / "x.db"), "--out",
                              str(out))
    assert code == 2 and "no archive at" in err
