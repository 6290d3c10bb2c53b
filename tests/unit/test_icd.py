"""Markdown interface control documents and the JSON dictionary, generated; ``ground dictionary export``."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from fsw.dictionary import load_dictionary
from fsw.protocol import TC_HEADER_LEN, TM_HEADER_LEN, PusTc
from ground.icd import GENERATED_NOTE, dictionary_to_data, icd_files, md, unit_icd
from tests.unit.archive_data import run_ground

D = load_dictionary()
REF = Path(__file__).resolve().parents[2] / "fsw" / "missions" / "reference"


def _table_after(doc: str, heading_start: str) -> list[list[str]]:
    """Rows (cells) of the first table after the heading that starts with ``heading_start``."""
    lines = doc.splitlines()
    i = next(k for k, line in enumerate(lines) if line.startswith(heading_start))
    rows = []
    started = False
    for line in lines[i + 1:]:
        if line.startswith("|"):
            started = True
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
            if not set(line) <= set("|-: "):
                rows.append(cells)
        elif started:
            break
    return rows[1:]  # without the header row


def test_one_document_per_unit_and_an_index() -> None:
    files = icd_files(D)
    assert set(files) == {f"{s.name}.md" for s in D.systems} | {"README.md"}
    for name, text in files.items():
        assert text.startswith(f"<!-- {GENERATED_NOTE} -->"), name
        assert GENERATED_NOTE in text.splitlines()[3]
    for s in D.systems:
        assert f"[{s.name}.md]({s.name}.md)" in files["README.md"]


def test_command_offsets_ranges_and_hazard_flags() -> None:
    fss = unit_icd(D, "FSS")
    cmd = D.command("FSS_LEVEL")
    rows = _table_after(fss, "### `FSS_LEVEL`")
    assert rows[0][:2] == [str(TC_HEADER_LEN), "2"] and rows[0][5] == f"= {cmd.function_id}"
    arg = cmd.args[0]
    assert rows[1][:4] == [str(TC_HEADER_LEN + 2), str(arg.size), f"`{arg.name}`", arg.type]
    assert rows[1][5] == f"{int(arg.min)} .. {int(arg.max)}"
    # the packet length written in the document is what a real TC of that command measures
    tc = PusTc(cmd.apid, cmd.service, cmd.subservice, D.encode_command(cmd, {"target_urad": 0}))
    assert f"packet length {len(tc.pack())} octets" in fss
    assert "`CHECKOUT`, `SCIENCE`" in fss.split("### `FSS_LEVEL`")[1].split("###")[0]
    lander = unit_icd(D, "LANDER")
    fire = lander.split("### `DEPLOY_FIRE`")[1].split("\n### ")[0]
    assert "**HAZARDOUS**" in fire and "`ALPINE`=1" in fire
    assert "**HAZARDOUS**" not in fss


def test_telemetry_offsets_types_calibration_and_limits() -> None:
    fss = unit_icd(D, "FSS")
    pkt = D.packet("FSS_HK")
    rows = _table_after(fss, "### `FSS_HK`")
    assert rows[0][:2] == [str(TM_HEADER_LEN), "2"] and rows[0][5] == f"= {pkt.sid}"
    offset = TM_HEADER_LEN + 2
    for row, p in zip(rows[1:], pkt.params):
        assert row[0] == str(offset) and row[1] == str(p.size) and row[2] == f"`{p.name}`"
        offset += p.size
    assert len(rows) == len(pkt.params) + 1
    temp = next(r for r in rows if r[2] == "`FSS_TEMP_VBB`")
    assert temp[4] == "degC" and temp[5] == "eng = 0.01·raw" and temp[6] == "warn < -40 or > 45; alarm < -55 or > 60"
    assert f"CRC at offset {offset}" in fss


def test_events_modes_power_and_phases() -> None:
    fss = unit_icd(D, "FSS")
    evt = D.system("FSS").event("FSS_BATT_LOW")
    assert f"### `FSS_BATT_LOW`: event id {evt.id}, {evt.severity} (TM[5,{evt.subservice}])" in fss
    modes = _table_after(fss, "## Modes and power")
    s = D.system("FSS")
    assert [(r[0], r[2]) for r in modes] == [(f"`{m}`", f"{s.power_w[m]:g}") for m in s.modes]
    if D.phases:
        assert "Modes allowed in each mission phase" in fss


def test_text_from_the_dictionary_is_never_markup(tmp_path: Path) -> None:
    assert md("<img src=x onerror=alert(1)> | *bold* [link](javascript:x)") == \
        "\\<img src=x onerror=alert(1)\\> \\| \\*bold\\* \\[link\\](javascript:x)"
    root = tmp_path / "m"
    shutil.copytree(REF, root)
    fss = (root / "fss.yaml").read_text()
    fss = fss.replace("description: Set the VBB feedback gain.",
                      "description: '<script>alert(1)</script> | x'", 1)
    (root / "fss.yaml").write_text(fss)
    doc = unit_icd(load_dictionary(str(root)), "FSS")
    assert "<script>" not in doc and "\\<script\\>alert(1)\\</script\\> \\| x" in doc


def test_json_export_round_trips_through_json() -> None:
    data = json.loads(json.dumps(dictionary_to_data(D)))
    assert data["mission"] == D.mission and data["generated"] == GENERATED_NOTE
    fss = next(s for s in data["systems"] if s["name"] == "FSS")
    assert fss["apid"] == D.system("FSS").apid
    hk = next(p for p in fss["telemetry"] if p["name"] == "FSS_HK")
    temp = next(p for p in hk["params"] if p["name"] == "FSS_TEMP_VBB")
    assert temp["calibration"] == {"poly": [0.0, 0.01]} and temp["limits"]["alarm"] == [-55.0, 60.0]


def test_dictionary_export_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    lxml_etree = pytest.importorskip("lxml.etree")
    code, out, err = run_ground(monkeypatch, capsys, "dictionary", "export", "--xtce", str(tmp_path / "x/m.xml"),
                                "--markdown", str(tmp_path / "icd"), "--json", str(tmp_path / "d.json"))
    assert code == 0, err
    assert lxml_etree.parse(str(tmp_path / "x/m.xml")).getroot().get("name")
    assert sorted(p.name for p in (tmp_path / "icd").iterdir()) == sorted(icd_files(D))
    assert json.loads((tmp_path / "d.json").read_text())["mission"] == D.mission
    assert "note:" in out
    code, _, err = run_ground(monkeypatch, capsys, "dictionary", "export")
    assert code == 2 and err.startswith("ground: dictionary export: give at least one")
    (tmp_path / "afile").write_text("x")
    code, _, err = run_ground(monkeypatch, capsys, "dictionary", "export", "--markdown", str(tmp_path / "afile"))
    assert code == 2 and "is a file" in err and "Traceback" not in err
    code, out, _ = run_ground(monkeypatch, capsys, "dictionary", "export", "--help")
    assert code == 0 and "--xtce" in out and "--markdown" in out
