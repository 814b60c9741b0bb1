"""Property-based tests: the parser and the subject matcher never raise, and matching is invariant
to case, accents, whitespace and stacked reply/forward prefixes."""

from __future__ import annotations

import os
import unicodedata
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mail.parse_rfc import find_rfcs, is_plausible_rfc
from mail.parsing import find_ticket_token, parse_message
from mail.subject import CONFIG_SUBJECT, extract_ticket_token, format_ticket, match_config_subject

CORPUS = sorted((Path(__file__).resolve().parents[2] / "data" / "eml").glob("*.eml"))
SETTINGS = settings(
    max_examples=int(os.environ.get("MAIL_HYPOTHESIS_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

PREFIXES = ["RE:", "Re:", "re :", "RV:", "FW:", "Fwd:", "FWD:", "RES:", "ENC:", "AW:", "TR:", "RE[2]:", "Re(3):"]
TAGS = ["[EXTERNO]", "[EXTERNAL]", "[Externo]", "*EXTERNO*", "EXTERNAL:"]
INTERESTING = [
    b"\r\n", b"\n", b"\r\n\r\n", b"--", b"=?", b"?=", b"=?utf-8?b?", b"\x00", b":", b";", b"\"",
    b"boundary=", b"Content-Type: multipart/mixed; boundary=x\r\n", b"--x\r\n", b"\xff", b"\xc3",
    b"Content-Transfer-Encoding: base64\r\n", b"=\r\n", b"<", b">", b"@", b" ", b"\t",
]  # fmt: skip


def _assert_sane(raw: bytes) -> None:
    message = parse_message(raw)
    assert message.raw_size == len(raw)
    assert message.dedup_key.startswith(("mid:", "sha256:"))
    assert "\x00" not in message.body_text + message.subject + message.from_name
    assert all(not 0xD800 <= ord(c) <= 0xDFFF for c in message.body_text + message.subject)
    assert all(attachment.size >= 0 for attachment in message.attachments)
    find_ticket_token(message)
    find_rfcs(message.body_text)
    match_config_subject(message.subject)


@SETTINGS
@given(st.binary(max_size=4096))
def test_parse_message_never_raises_on_arbitrary_bytes(raw: bytes) -> None:
    _assert_sane(raw)


@st.composite
def mutated_corpus_message(draw: st.DrawFn) -> bytes:
    raw = bytearray(draw(st.sampled_from(CORPUS)).read_bytes())
    for _ in range(draw(st.integers(min_value=1, max_value=8))):
        position = draw(st.integers(min_value=0, max_value=len(raw)))
        action = draw(st.sampled_from(["insert", "delete", "flip", "truncate", "duplicate"]))
        if action == "insert":
            raw[position:position] = draw(st.sampled_from(INTERESTING) | st.binary(min_size=1, max_size=16))
        elif action == "delete":
            del raw[position : position + draw(st.integers(min_value=1, max_value=64))]
        elif action == "flip" and position < len(raw):
            raw[position] = draw(st.integers(min_value=0, max_value=255))
        elif action == "truncate":
            del raw[position:]
        elif action == "duplicate":
            raw[position:position] = raw[position : position + draw(st.integers(min_value=1, max_value=200))]
    return bytes(raw)


@SETTINGS
@given(mutated_corpus_message())
def test_parse_message_never_raises_on_mutated_corpus_messages(raw: bytes) -> None:
    _assert_sane(raw)


@SETTINGS
@given(st.text(max_size=3000))
def test_match_config_subject_never_raises(subject: str) -> None:
    match = match_config_subject(subject)
    assert match.matched is False or match.mentions_phrase is True
    if match.ticket is not None:
        assert match.ticket == extract_ticket_token(match.ticket)


def _strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@st.composite
def config_subject_variant(draw: st.DrawFn) -> tuple[str, str | None]:
    words = CONFIG_SUBJECT.split(" ")
    if draw(st.booleans()):
        words = [_strip_accents(word) for word in words]
    words = ["".join(c.upper() if draw(st.booleans()) else c.lower() for c in word) for word in words]
    spaces = st.sampled_from([" ", "  ", "\t", " \u00a0", "   "])
    core = words[0] + "".join(draw(spaces) + word for word in words[1:])
    head = draw(st.lists(st.sampled_from(PREFIXES + TAGS), max_size=6))
    ticket = draw(st.none() | st.integers(min_value=0, max_value=10**9).map(format_ticket))
    subject = " ".join([*head, core])
    if ticket is not None:
        subject += draw(st.sampled_from([f" [{ticket}]", f" ({ticket})", f" {ticket}", f" [{ticket.lower()}]"]))
    return draw(st.sampled_from(["", " ", "  "])) + subject + draw(st.sampled_from(["", " ", "."])), ticket


@SETTINGS
@given(config_subject_variant())
def test_matching_is_invariant_to_case_accents_spacing_prefixes_and_tickets(variant: tuple[str, str | None]) -> None:
    subject, ticket = variant
    match = match_config_subject(subject)
    assert match.matched, subject
    assert match.ticket == ticket


@SETTINGS
@given(st.text(max_size=200), st.lists(st.sampled_from(PREFIXES + TAGS), min_size=1, max_size=5))
def test_prefix_stacking_and_case_do_not_change_the_outcome(subject: str, head: list[str]) -> None:
    expected = match_config_subject(subject).matched
    assert match_config_subject(" ".join([*head, subject])).matched is expected
    assert match_config_subject(subject.upper()).matched is expected
    assert match_config_subject(subject.lower()).matched is expected


@SETTINGS
@given(st.integers(min_value=0, max_value=10**12 - 1), st.text(max_size=50), st.text(max_size=50))
def test_formatted_tickets_are_found_inside_any_text(number: int, before: str, after: str) -> None:
    token = format_ticket(number)
    found = extract_ticket_token(f"{before} [{token}] {after}")
    assert found is not None
    if extract_ticket_token(before + " ") is None:
        assert found == token


@SETTINGS
@given(st.text(max_size=2000))
def test_find_rfcs_only_returns_plausible_canonical_rfcs(text: str) -> None:
    for rfc in find_rfcs(text):
        assert is_plausible_rfc(rfc)
