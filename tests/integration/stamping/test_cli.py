"""``timbrado validate FILE.xml`` explains a broken REP by SAT code."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from admin.cli import build_parser
from core.cfdi.builder import build_rep
from core.settings import Settings
from tests.unit.cfdi.factories import make_signer, simple_rep

AT = "2025-03-10T19:00:00+00:00"


def run(tmp_path: Path, xml: bytes, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    path = tmp_path / "rep.xml"
    path.write_bytes(xml)
    args = build_parser().parse_args(["validate", str(path), "--at", AT])
    code = args.fn(Settings(data_dir=tmp_path), args)
    return code, capsys.readouterr().out


def rep_xml() -> bytes:
    return build_rep(simple_rep(issued_at=dt.datetime(2025, 3, 10, 18, 30, tzinfo=dt.UTC)), make_signer()).xml


def test_valid_rep_exits_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(tmp_path, rep_xml(), capsys)
    assert code == 0 and "válido" in out


def test_broken_rep_is_explained_by_sat_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(tmp_path, rep_xml().replace(b'Monto="580.00"', b'Monto="500.00"'), capsys)
    assert code == 1
    assert "[CRP20217]" in out and "[CFDI40102]" in out


def test_hostile_file_is_refused_not_parsed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(tmp_path, b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>', capsys)
    assert code == 1 and "[xml_con_doctype]" in out
