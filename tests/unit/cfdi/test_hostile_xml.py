"""Hostile XML is refused before or while parsing, with a code and a Spanish message."""

from __future__ import annotations

import pytest

from core.cfdi.errors import UnsafeXml
from core.cfdi.parsing import parse_untrusted
from core.cfdi.validator import validate_rep


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>', "xml_con_doctype"),
        (b'<!DOCTYPE a SYSTEM "http://evil.example/x.dtd"><a/>', "xml_con_doctype"),
        (b'<!DOCTYPE a [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><a>&xxe;</a>', "xml_con_doctype"),
        (
            '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>'.encode("utf-16"),
            "xml_con_doctype",
        ),
        (b"<a><b></a>", "xml_mal_formado"),
        (b"", "xml_mal_formado"),
        (b"not xml at all", "xml_mal_formado"),
    ],
)
def test_hostile_documents_are_refused(data: bytes, code: str) -> None:
    with pytest.raises(UnsafeXml) as excinfo:
        parse_untrusted(data)
    assert excinfo.value.code == code
    assert "passwd" not in excinfo.value.message


def test_a_50_mb_document_is_refused_before_parsing() -> None:
    data = b"<a>" + b"x" * (50 * 1024 * 1024) + b"</a>"
    with pytest.raises(UnsafeXml) as excinfo:
        parse_untrusted(data)
    assert excinfo.value.code == "xml_demasiado_grande"


def test_validator_answers_hostile_input_with_a_finding() -> None:
    findings = validate_rep(b'<!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><a>&x;</a>')
    assert [f.code for f in findings] == ["xml_con_doctype"]


def test_billion_laughs_is_refused() -> None:
    laughs = b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]><l>&b;</l>'
    with pytest.raises(UnsafeXml):
        parse_untrusted(laughs)
