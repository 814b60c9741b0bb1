"""Key material: the settings value format and the generated key file."""

from __future__ import annotations

import base64
import os
import stat
import threading
from pathlib import Path

import pytest

from core.secrets import (
    KEYFILE_NAME,
    Keyring,
    SecretBox,
    SecretError,
    SecretKey,
    load_or_create_keyfile,
    write_keyfile,
)

K1 = bytes(range(32))
K2 = bytes(range(32, 64))


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def test_first_key_in_the_settings_value_is_the_active_one() -> None:
    keyring = Keyring.parse(f"k2:{b64(K2)},k1:{b64(K1)}")
    assert keyring.active.key_id == "k2"
    assert keyring.key_ids == ("k2", "k1")
    assert keyring.get("k1") == SecretKey("k1", K1)


def test_settings_value_accepts_spaces_newlines_and_urlsafe_base64() -> None:
    urlsafe = base64.urlsafe_b64encode(b"\xfb" * 32).decode().rstrip("=")
    keyring = Keyring.parse(f"  k2 : {urlsafe} ,\n k1:{b64(K1)}\n")
    assert keyring.active.material == b"\xfb" * 32


@pytest.mark.parametrize(
    "value",
    [
        "",
        " , ",
        "k1",
        f":{b64(K1)}",
        "k1:no base64!",
        f"k1:{b64(K1[:16])}",  # AES-128 is not accepted
        f"k1:{b64(K1 + b'x')}",
        f"k1:{b64(K1)},k1:{b64(K2)}",
        f"k 1:{b64(K1)}",
        f"{'k' * 33}:{b64(K1)}",
        f"kñ:{b64(K1)}",
    ],
)
def test_invalid_settings_values_are_refused_without_quoting_them(value: str) -> None:
    with pytest.raises(SecretError) as caught:
        Keyring.parse(value)
    assert caught.value.code == "invalid_secret_keys"
    assert b64(K1) not in caught.value.message
    assert b64(K2) not in caught.value.message


def test_encoded_keyring_parses_back_to_the_same_keys() -> None:
    keyring = Keyring.parse(f"k2:{b64(K2)},k1:{b64(K1)}")
    assert Keyring.parse(keyring.encoded()) == keyring


def test_new_active_key_keeps_the_old_ones_for_decryption() -> None:
    keyring = Keyring.parse(f"k1:{b64(K1)}")
    rotated = keyring.with_new_active(SecretKey("k2", K2))
    assert rotated.key_ids == ("k2", "k1")
    assert rotated.without("k1").key_ids == ("k2",)
    with pytest.raises(SecretError):
        rotated.without("k2")


def test_keyring_and_key_reprs_hide_the_material() -> None:
    keyring = Keyring.parse(f"k2:{b64(K2)},k1:{b64(K1)}")
    for text in (repr(keyring), str(keyring), repr(keyring.active), str(keyring.keys[1])):
        assert b64(K1) not in text and b64(K2) not in text
        assert K1.hex() not in text and repr(K1) not in text


def test_first_run_creates_a_private_keyfile_and_says_so(tmp_path: Path) -> None:
    data_dir = tmp_path / "data" / "nested"
    result = load_or_create_keyfile(data_dir)
    assert result.generated
    assert result.path == data_dir / KEYFILE_NAME
    assert stat.S_IMODE(result.path.stat().st_mode) == 0o600
    assert Keyring.parse(result.path.read_text()) == result.keyring
    assert [p.name for p in data_dir.iterdir()] == [KEYFILE_NAME]  # no temporary file left behind


def test_second_run_reads_the_same_key(tmp_path: Path) -> None:
    first = load_or_create_keyfile(tmp_path)
    blob = SecretBox(first.keyring).encrypt(b"llave", "csd:1:1")
    second = load_or_create_keyfile(tmp_path)
    assert not second.generated
    assert second.keyring == first.keyring
    assert SecretBox(second.keyring).decrypt(blob, "csd:1:1") == b"llave"


def test_concurrent_first_runs_agree_on_one_key(tmp_path: Path) -> None:
    results: list[Keyring] = []
    generated: list[bool] = []

    def start() -> None:
        result = load_or_create_keyfile(tmp_path)
        results.append(result.keyring)
        generated.append(result.generated)

    threads = [threading.Thread(target=start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({keyring.encoded() for keyring in results}) == 1
    assert generated.count(True) <= 1


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_keyfile_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = load_or_create_keyfile(tmp_path).path
    os.chmod(path, mode)
    with pytest.raises(SecretError) as caught:
        load_or_create_keyfile(tmp_path)
    assert caught.value.code == "insecure_keyfile"
    assert "600" in caught.value.message


def test_corrupt_keyfile_is_refused(tmp_path: Path) -> None:
    path = tmp_path / KEYFILE_NAME
    path.write_text("basura")
    os.chmod(path, 0o600)
    with pytest.raises(SecretError) as caught:
        load_or_create_keyfile(tmp_path)
    assert caught.value.code == "invalid_secret_keys"


def test_write_keyfile_replaces_it_privately(tmp_path: Path) -> None:
    result = load_or_create_keyfile(tmp_path)
    rotated = result.keyring.with_new_active()
    write_keyfile(result.path, rotated)
    assert stat.S_IMODE(result.path.stat().st_mode) == 0o600
    assert load_or_create_keyfile(tmp_path).keyring == rotated
    assert sorted(p.name for p in tmp_path.iterdir()) == [KEYFILE_NAME]
