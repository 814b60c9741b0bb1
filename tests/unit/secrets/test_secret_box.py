"""SecretBox: AES-256-GCM at rest with key ids, rotation and hostile blobs."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.secrets import Keyring, SecretBox, SecretError, SecretKey, split_blob

AAD = "csd:42:30001000000500003416"


def key(key_id: str, fill: int) -> SecretKey:
    return SecretKey(key_id, bytes([fill]) * 32)


@pytest.fixture
def box() -> SecretBox:
    return SecretBox(Keyring((key("k1", 1),)))


def test_encrypted_secret_decrypts_to_the_same_bytes(box: SecretBox) -> None:
    blob = box.encrypt(b"llave privada PKCS#8", AAD)
    assert box.decrypt(blob, AAD) == b"llave privada PKCS#8"


@given(plaintext=st.binary(max_size=4096), aad=st.text(max_size=64))
def test_round_trip_holds_for_any_bytes_and_purpose(plaintext: bytes, aad: str) -> None:
    box = SecretBox(Keyring((key("k1", 1),)))
    assert box.decrypt(box.encrypt(plaintext, aad), aad) == plaintext


def test_ciphertext_names_the_active_key_and_hides_the_plaintext(box: SecretBox) -> None:
    blob = box.encrypt(b"SECRETO-EN-CLARO", AAD)
    assert blob.startswith(b"v1:k1:")
    assert b"SECRETO-EN-CLARO" not in blob
    assert b"SECRETO-EN-CLARO" not in base64.b64decode(blob.split(b":")[2])


def test_same_plaintext_encrypts_differently_each_time(box: SecretBox) -> None:
    assert box.encrypt(b"x", AAD) != box.encrypt(b"x", AAD)


def test_nonce_is_96_bits_and_tag_128_bits(box: SecretBox) -> None:
    _, payload = split_blob(box.encrypt(b"abc", AAD))
    assert len(payload) == 12 + 3 + 16


def test_wrong_purpose_does_not_decrypt(box: SecretBox) -> None:
    blob = box.encrypt(b"llave", "csd:42:30001000000500003416")
    with pytest.raises(SecretError) as caught:
        box.decrypt(blob, "csd:43:30001000000500003416")
    assert caught.value.code == "secret_decryption_failed"


@pytest.mark.parametrize("position", [0, 5, 11, 12, 20, -1])
def test_tampered_ciphertext_is_refused(box: SecretBox, position: int) -> None:
    blob = box.encrypt(b"llave privada del CSD", AAD)
    version, key_id, body = blob.split(b":")
    raw = bytearray(base64.b64decode(body))
    raw[position] ^= 0x01
    tampered = b":".join((version, key_id, base64.b64encode(bytes(raw))))
    with pytest.raises(SecretError) as caught:
        box.decrypt(tampered, AAD)
    assert caught.value.code == "secret_decryption_failed"


def test_swapping_the_key_id_in_the_prefix_is_refused() -> None:
    box = SecretBox(Keyring((key("k2", 2), key("k1", 2))))  # same material, different ids
    blob = box.encrypt(b"llave", AAD)
    relabelled = blob.replace(b"v1:k2:", b"v1:k1:", 1)
    with pytest.raises(SecretError) as caught:
        box.decrypt(relabelled, AAD)
    assert caught.value.code == "secret_decryption_failed"


def test_unknown_key_id_is_named_in_the_error() -> None:
    old = SecretBox(Keyring((key("k0", 9),)))
    blob = old.encrypt(b"llave", AAD)
    with pytest.raises(SecretError) as caught:
        SecretBox(Keyring((key("k1", 1),))).decrypt(blob, AAD)
    assert caught.value.code == "unknown_secret_key"
    assert "k0" in caught.value.message


@pytest.mark.parametrize(
    "blob",
    [
        b"",
        b"v1",
        b"v1:k1",
        b"v2:k1:AAAA",
        b"v1::" + base64.b64encode(bytes(40)),
        b"v1:k1:no-es-base64!!",
        b"v1:k1:" + base64.b64encode(bytes(27)),  # shorter than nonce + tag
        b"v1:k1:AAAA:extra",
        b"v1:\xff\xfe:AAAA",
        b"\x00" * 100,
    ],
)
def test_malformed_blobs_are_refused_with_a_stable_code(box: SecretBox, blob: bytes) -> None:
    with pytest.raises(SecretError) as caught:
        box.decrypt(blob, AAD)
    assert caught.value.code == "malformed_secret"
    assert caught.value.message == "El secreto almacenado no tiene un formato válido."


def test_rotation_re_encrypts_old_blobs_with_the_active_key() -> None:
    before = SecretBox(Keyring((key("k1", 1),)))
    blob = before.encrypt(b"llave del CSD", AAD)
    after = SecretBox(Keyring((key("k2", 2), key("k1", 1))))
    assert after.needs_rotation(blob)
    rotated = after.rotate(blob, AAD)
    assert rotated.startswith(b"v1:k2:")
    assert not after.needs_rotation(rotated)
    assert after.decrypt(rotated, AAD) == b"llave del CSD"
    # once everything is rotated, the old key can be retired
    assert SecretBox(Keyring((key("k2", 2),))).decrypt(rotated, AAD) == b"llave del CSD"


def test_old_keys_still_decrypt_before_rotation() -> None:
    blob = SecretBox(Keyring((key("k1", 1),))).encrypt(b"llave", AAD)
    assert SecretBox(Keyring((key("k2", 2), key("k1", 1)))).decrypt(blob, AAD) == b"llave"


def test_rotating_a_current_blob_returns_it_unchanged(box: SecretBox) -> None:
    blob = box.encrypt(b"llave", AAD)
    assert not box.needs_rotation(blob)
    assert box.rotate(blob, AAD) == blob


def test_rotation_refuses_a_blob_with_the_wrong_purpose() -> None:
    blob = SecretBox(Keyring((key("k1", 1),))).encrypt(b"llave", AAD)
    with pytest.raises(SecretError):
        SecretBox(Keyring((key("k2", 2), key("k1", 1)))).rotate(blob, "csd:otro:1")
    with pytest.raises(SecretError):
        SecretBox(Keyring((key("k1", 1),))).rotate(blob, "csd:otro:1")


def test_bytes_and_text_purposes_are_the_same_purpose(box: SecretBox) -> None:
    assert box.decrypt(box.encrypt(b"x", AAD), AAD.encode()) == b"x"


def test_box_repr_and_errors_never_show_key_material() -> None:
    material = bytes(range(32))
    box = SecretBox(Keyring((SecretKey("k1", material),)))
    encoded = base64.b64encode(material).decode()
    texts = [repr(box), str(box), repr(box._keyring), str(box._keyring.active)]
    try:
        box.decrypt(b"v1:k1:" + base64.b64encode(bytes(40)), AAD)
    except SecretError as error:
        texts += [str(error), repr(error), error.message]
    for text in texts:
        assert encoded not in text
        assert material.hex() not in text
        assert repr(material) not in text
