"""Benchmark: load, classify and validate SAT certificate/key pairs vs cryptography alone.

Run: ``.venv/bin/python bench/credentials.py [--pairs 1000] [--rounds 2] [--workers N]``

Generates the pairs once with the test factory (tests/support/certs.py): RSA 2048 keys, each in
SAT's .key format (PKCS#8, PBES2 / PBKDF2-SHA1 2048 rounds / 3DES-CBC) and a DER CSD certificate
issued by the project's test CA. Then, in the same run and alternating, it times:

- raw: ``load_der_private_key`` + ``load_der_x509_certificate`` (cryptography alone);
- ours: ``core.sat.open_credential`` (parse the certificate and its subject, classify CSD/e.firma,
  verify the issuer's signature, check validity and RFC, inspect the PKCS#8 envelope, decrypt the
  key, check the key matches the certificate).

Prints pairs/s for each (best round), the ratio and the target (ours >= 80% of raw). Key
decryption (PBKDF2 + 3DES + RSA key checks) dominates both. Not a timed test: figures only.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from core.sat import CredentialUse, Rfc, SatTrust, open_credential
from tests.support.certs import PASSWORD, TestCa, fresh_key

AT = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
RFC = "EKU9003173C9"
TARGET = 0.80


def _make_pairs(args: tuple[bytes, bytes, int]) -> list[tuple[bytes, bytes]]:
    ca_cert_der, ca_key_der, count = args
    ca_key = serialization.load_der_private_key(ca_key_der, None)
    ca = TestCa(x509.load_der_x509_certificate(ca_cert_der), ca_key)  # type: ignore[arg-type]
    pairs = []
    for _ in range(count):
        issued = ca.issue(
            kind="csd",
            rfc=RFC,
            key=fresh_key(2048),
            not_before=AT - timedelta(days=30),
            not_after=AT + timedelta(days=365),
        )
        pairs.append((issued.cer_der(), issued.key_der(PASSWORD)))
    return pairs


def generate(ca: TestCa, pairs: int, workers: int) -> list[tuple[bytes, bytes]]:
    ca_cert = ca.certificate.public_bytes(serialization.Encoding.DER)
    ca_key = ca.private_key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    chunks = [pairs // workers + (1 if i < pairs % workers else 0) for i in range(workers)]
    with ProcessPoolExecutor(workers) as pool:
        results = pool.map(_make_pairs, [(ca_cert, ca_key, n) for n in chunks if n])
    return [pair for chunk in results for pair in chunk]


def run_raw(pairs: list[tuple[bytes, bytes]]) -> float:
    password = PASSWORD.encode()
    start = time.perf_counter()
    for cer, key in pairs:
        serialization.load_der_private_key(key, password)
        x509.load_der_x509_certificate(cer)
    return time.perf_counter() - start


def run_ours(pairs: list[tuple[bytes, bytes]], trust: SatTrust) -> float:
    rfc = Rfc(RFC)
    start = time.perf_counter()
    for cer, key in pairs:
        credential = open_credential(cer, key, PASSWORD, expected_use=CredentialUse.CSD, rfc=rfc, at=AT, trust=trust)
        assert credential.is_csd()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()

    ca = TestCa.create(key=fresh_key(2048))
    trust = SatTrust(production_cas=(ca.certificate,))
    started = time.perf_counter()
    pairs = generate(ca, args.pairs, args.workers)
    print(f"generated {len(pairs)} CSD pairs (RSA 2048, SAT-format .key) in {time.perf_counter() - started:.1f} s")

    # Warm-up, then alternate so that both sides see the same machine conditions.
    run_raw(pairs[:20])
    run_ours(pairs[:20], trust)
    raw_times, our_times = [], []
    for _ in range(args.rounds):
        raw_times.append(run_raw(pairs))
        our_times.append(run_ours(pairs, trust))
    raw_rate = len(pairs) / min(raw_times)
    our_rate = len(pairs) / min(our_times)
    ratio = our_rate / raw_rate
    overhead_us = (min(our_times) - min(raw_times)) / len(pairs) * 1e6
    print(f"raw cryptography (decrypt key + parse cert): {raw_rate:8.1f} pairs/s")
    print(f"core.sat.open_credential (load+classify+validate): {our_rate:8.1f} pairs/s")
    print(f"ratio: {ratio:.1%} of raw (target >= {TARGET:.0%}): {'OK' if ratio >= TARGET else 'BELOW TARGET'}")
    print(f"overhead per pair: {overhead_us:.0f} µs; best of {args.rounds} rounds")


if __name__ == "__main__":
    main()
