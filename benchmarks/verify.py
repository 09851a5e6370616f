#!/usr/bin/env python
"""Signed meter value verification benchmark: `ledger.signed.verify.examine` beside bare
`cryptography` and beside pyocmf, on the same OCMF records, on all seven OCMF curves.

    .venv/bin/python benchmarks/verify.py [--records N] [--keys K] [--rounds R]
                                          [--curves secp256r1,...] [--clock cpu|wall]
                                          [--profile CURVE]

The pyocmf column needs pyocmf in the venv (`.venv/bin/python -m pip install pyocmf`); without it
that column is left out.

What it does, in one run:

1. For each curve, K keys (default 10) and N records (default 10,000). Each record is a real-sized
   OCMF transaction record (two readings, ABL-style fields, about 600 bytes) with its own PG,
   times and register values, signed by key i % K: with `cryptography`, and for secp192k1
   (which OpenSSL lacks) with the pure-Python `ecdsa` package and the SEC 2 parameters. SA names
   the curve; for brainpool256r1 in the Transparenzsoftware's spelling `brainpoolP256r1`, the only
   one pyocmf accepts with a brainpool key (ours takes both).
2. Three ways of verifying those records, each checked (every record must verify; a mismatch
   aborts the run):
   - ours: `examine(record, claimed_key)` with the record's text and the key's hex SPKI as a
     station sends them: split, payload and signature section parsed, readings, checks, the key
     read, the signature verified, the Verdict built. Key objects are cached per key inside
     ledger.signed, which is why there are K distinct keys rather than one.
   - cryptography: the floor. Keys loaded once; `key.verify(der, payload_bytes,
     ECDSA(SHA256()))` on payloads already split off and signatures already decoded. For
     secp192k1: the `ecdsa` package, a VerifyingKey per key loaded once with
     `precompute(lazy=True)` (what ledger.signed.curves does too), `vk.verify(der, payload,
     sha256, sigdecode_der)`.
   - pyocmf: its public API, `OCMF.from_string(record).verify_signature(spki_hex)` (a pydantic
     model of the record, then cryptography or, for secp192k1, ecdsa without precomputation).
     pyocmf 0.6 cannot verify brainpool384r1 (its key model has no such curve): "n/a".
3. R rounds (default 5). In each round every curve in turn, and on each curve the three
   implementations one after the other in an order that rotates every round, each over all N
   records after a short unmeasured warm-up in the first round. Reported: median records/s per
   implementation and the median over the rounds of the per-round ratios ours / cryptography and
   ours / pyocmf, against the goals ours / cryptography >= 0.85 on secp256r1 and ours faster than
   pyocmf on every curve.

--clock cpu (default) times with the process's CPU time, which a busy shared machine disturbs far
less than wall time; the loops are single-threaded and CPU-bound, so on an idle machine the two
agree. --clock wall uses time.perf_counter.
--profile CURVE runs examine over that curve's records once more under cProfile and prints where
the time goes.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import hashlib
import io
import os
import pstats
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ecdsa
import ecdsa.ellipticcurve
import ecdsa.util
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

try:
    import pyocmf
except ImportError:  # the column is left out
    pyocmf = None  # type: ignore[assignment]

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ledger.signed.curves import SECP192K1  # found through the path set above
from ledger.signed.verify import Signature, examine

CURVES = (
    "secp192k1",
    "secp192r1",
    "secp256k1",
    "secp256r1",
    "brainpool256r1",
    "secp384r1",
    "brainpool384r1",
)
OPENSSL = {
    "secp192r1": ec.SECP192R1(),
    "secp256k1": ec.SECP256K1(),
    "secp256r1": ec.SECP256R1(),
    "brainpool256r1": ec.BrainpoolP256R1(),
    "secp384r1": ec.SECP384R1(),
    "brainpool384r1": ec.BrainpoolP384R1(),
}
SA_SPELLING = {"brainpool256r1": "brainpoolP256r1"}  # see point 1 of the docstring
PYOCMF_CANNOT = {"brainpool384r1": "n/a"}
IMPLEMENTATIONS = ("ours", "cryptography", "pyocmf")
ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())
WARM_UP = 200


@dataclass
class Workload:
    """One curve's records, in the shape each implementation takes them."""

    curve: str
    ours: list[tuple[str, str]] = field(default_factory=list)  # (record text, key hex SPKI)
    bare: list[tuple[Any, bytes, bytes]] = field(default_factory=list)  # (key, DER, payload)
    pyocmf: list[tuple[str, str]] = field(default_factory=list)


def payload(index: int) -> bytes:
    """A two-reading transaction record's payload, different for every index."""
    begin = 1000 + index * 7.125
    end = begin + 11.525 + (index % 13)
    minute = index % 60
    return (
        '{"FV":"1.0","GI":"ABL SBC-301","GS":"808829900001","GV":"1.4p3",'
        f'"PG":"T{index + 1}","MV":"Phoenix Contact","MM":"EEM-350-D-MCB",'
        '"MS":"BQ27400330016","MF":"1.0","IS":true,"IL":"TRUSTED",'
        '"IF":["RFID_PLAIN","OCPP_RS_TLS"],"IT":"ISO14443",'
        f'"ID":"{index:08X}","CT":"EVSEID","CI":"DE*ABC*E{index % 500:05d}",'
        f'"RD":[{{"TM":"2024-03-01T10:{minute:02d}:15,000+0100 S","TX":"B","RV":{begin:.3f},'
        '"RI":"1-b:1.8.0","RU":"kWh","RT":"AC","EF":"","ST":"G"},'
        f'{{"TM":"2024-03-01T11:{minute:02d}:41,000+0100 S","TX":"E","RV":{end:.3f},'
        '"RI":"1-b:1.8.0","RU":"kWh","RT":"AC","EF":"","ST":"G"}]}'
    ).encode()


def make_workload(curve: str, records: int, keys: int) -> Workload:
    work = Workload(curve)
    signers: list[tuple[Callable[[bytes], bytes], str, Any]] = []
    for _ in range(keys):
        if curve == "secp192k1":
            signing = ecdsa.SigningKey.generate(curve=SECP192K1, hashfunc=hashlib.sha256)
            public = signing.get_verifying_key()
            signers.append((_ecdsa_signer(signing), public.to_der().hex().upper(), _loaded(public)))
        else:
            private = ec.generate_private_key(OPENSSL[curve])
            spki = private.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            loaded = serialization.load_der_public_key(spki)  # loaded once, as a verifier would
            signers.append((_openssl_signer(private), spki.hex().upper(), loaded))
    method = f"ECDSA-{SA_SPELLING.get(curve, curve)}-SHA256"
    for index in range(records):
        sign, spki_hex, loaded = signers[index % keys]
        body = payload(index)
        der = sign(body)
        text = f'OCMF|{body.decode()}|{{"SA":"{method}","SD":"{der.hex().upper()}"}}'
        work.ours.append((text, spki_hex))
        work.bare.append((loaded, der, body))
        work.pyocmf.append((text, spki_hex))
    return work


def _openssl_signer(private: ec.EllipticCurvePrivateKey) -> Callable[[bytes], bytes]:
    return lambda message: private.sign(message, ECDSA_SHA256)


def _ecdsa_signer(signing: ecdsa.SigningKey) -> Callable[[bytes], bytes]:
    return lambda message: signing.sign(
        message, hashfunc=hashlib.sha256, sigencode=ecdsa.util.sigencode_der
    )


def _loaded(public: ecdsa.VerifyingKey) -> ecdsa.VerifyingKey:
    # A point with its order, so that precompute works (from_string leaves the order out).
    point = public.pubkey.point
    jacobi = ecdsa.ellipticcurve.PointJacobi(
        SECP192K1.curve, point.x(), point.y(), 1, SECP192K1.order
    )
    key = ecdsa.VerifyingKey.from_public_point(jacobi, curve=SECP192K1, hashfunc=hashlib.sha256)
    key.precompute(lazy=True)
    return key


# --- the three implementations: each returns how many records verified ---


def run_ours(batch: list[tuple[str, str]]) -> int:
    holds = Signature.CLAIMED_KEY_ONLY
    return sum(examine(text, key).signature is holds for text, key in batch)


def run_cryptography(batch: list[tuple[Any, bytes, bytes]]) -> int:
    for key, der, body in batch:
        key.verify(der, body, ECDSA_SHA256)  # raises InvalidSignature if it does not hold
    return len(batch)


def run_ecdsa(batch: list[tuple[Any, bytes, bytes]]) -> int:
    sha256, sigdecode = hashlib.sha256, ecdsa.util.sigdecode_der
    return sum(bool(key.verify(der, body, sha256, sigdecode)) for key, der, body in batch)


def run_pyocmf(batch: list[tuple[str, str]]) -> int:
    assert pyocmf is not None
    parse = pyocmf.OCMF.from_string
    return sum(parse(text).verify_signature(key) for text, key in batch)


def runner(implementation: str, work: Workload) -> tuple[Callable[[Any], int], list[Any]] | None:
    if implementation == "ours":
        return run_ours, work.ours
    if implementation == "cryptography":
        return (run_ecdsa if work.curve == "secp192k1" else run_cryptography), work.bare
    if pyocmf is None or work.curve in PYOCMF_CANNOT:
        return None
    return run_pyocmf, work.pyocmf


def measure(run: Callable[[Any], int], batch: list[Any], clock: Callable[[], float]) -> float:
    """records/s over the whole batch; every record must verify."""
    gc.collect()
    started = clock()
    verified = run(batch)
    elapsed = clock() - started
    if verified != len(batch):
        raise SystemExit(f"{run.__name__}: {len(batch) - verified} of {len(batch)} did not verify")
    return len(batch) / elapsed


def bench(args: argparse.Namespace) -> dict[str, dict[str, list[float]]]:
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    workloads = []
    for curve in args.curves:
        started = time.perf_counter()
        workloads.append(make_workload(curve, args.records, args.keys))
        print(
            f"  {curve}: {args.records:,} records signed by {args.keys} keys "
            f"({time.perf_counter() - started:.1f} s)",
            flush=True,
        )
    rates: dict[str, dict[str, list[float]]] = {
        curve: {name: [] for name in IMPLEMENTATIONS} for curve in args.curves
    }
    for round_ in range(args.rounds):
        started = time.perf_counter()
        shift = round_ % len(IMPLEMENTATIONS)
        order = IMPLEMENTATIONS[shift:] + IMPLEMENTATIONS[:shift]
        for work in workloads:
            for name in order:
                chosen = runner(name, work)
                if chosen is None:
                    continue
                run, batch = chosen
                if round_ == 0:
                    run(batch[:WARM_UP])  # key caches, precomputation, imports
                rates[work.curve][name].append(measure(run, batch, clock))
        print(
            f"  round {round_ + 1}/{args.rounds} ({' -> '.join(order)}): "
            f"{time.perf_counter() - started:.0f} s",
            flush=True,
        )
    return rates


def ratio(rates: dict[str, list[float]], over: str) -> float | None:
    if not rates[over]:
        return None
    return statistics.median(ours / other for ours, other in zip(rates["ours"], rates[over]))


def report(args: argparse.Namespace, rates: dict[str, dict[str, list[float]]]) -> None:
    def rate(values: list[float]) -> str:
        return f"{statistics.median(values):>10,.0f}" if values else f"{'n/a':>10}"

    def share(value: float | None) -> str:
        return f"{value:>11.2f}" if value is not None else f"{'n/a':>11}"

    print()
    print(
        f"records/s ({args.clock} time), median of {args.rounds} rounds; {args.records:,} records "
        f"and {args.keys} keys per curve"
    )
    head = (
        f"{'curve':<16}{'ours':>10}{'crypto':>10}{'pyocmf':>10}"
        f"{'ours/crypto':>13}{'ours/pyocmf':>13}"
    )
    print(head)
    print("-" * len(head))
    for curve in args.curves:
        row = rates[curve]
        print(
            f"{curve:<16}{rate(row['ours'])}{rate(row['cryptography'])}{rate(row['pyocmf'])}"
            f"  {share(ratio(row, 'cryptography'))}  {share(ratio(row, 'pyocmf'))}"
        )
    print("-" * len(head))
    print("crypto on secp192k1: the ecdsa package (OpenSSL lacks the curve)")
    if pyocmf is None:
        print("pyocmf: not installed (.venv/bin/python -m pip install pyocmf), column skipped")
    else:
        print(f"pyocmf {pyocmf.__version__}; n/a: the curve is not supported by pyocmf")
    print()
    print("GOALS")
    if "secp256r1" in rates:
        value = ratio(rates["secp256r1"], "cryptography")
        assert value is not None
        verdict = "met" if value >= 0.85 else "MISSED"
        print(f"  ours / cryptography >= 0.85 on secp256r1: {value:.2f}, {verdict}")
    if pyocmf is not None:
        compared = {c: ratio(rates[c], "pyocmf") for c in args.curves}
        slower = [c for c, value in compared.items() if value is not None and value <= 1]
        print(
            "  faster than pyocmf on every curve pyocmf verifies: "
            + ("met" if not slower else f"MISSED on {', '.join(slower)}")
        )


def profile(curve: str, records: int, keys: int) -> None:
    work = make_workload(curve, records, keys)
    run_ours(work.ours[:WARM_UP])
    profiler = cProfile.Profile()
    profiler.enable()
    run_ours(work.ours)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(15)
    stats.sort_stats("cumulative").print_stats(r"ledger/signed", 20)
    print(f"\ncProfile of examine on {curve}, {records:,} records (profiler overhead included)")
    print(out.getvalue())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--records", type=int, default=10_000, help="records per curve (default 10,000)"
    )
    parser.add_argument("--keys", type=int, default=10, help="distinct keys per curve (default 10)")
    parser.add_argument("--rounds", type=int, default=5, help="measured rounds (default 5)")
    parser.add_argument(
        "--curves",
        default=",".join(CURVES),
        help="comma-separated curves (default: all seven)",
    )
    parser.add_argument(
        "--clock", choices=("cpu", "wall"), default="cpu", help="what to time (default cpu)"
    )
    parser.add_argument("--profile", metavar="CURVE", help="also profile examine on this curve")
    args = parser.parse_args(argv)
    args.curves = [name.strip() for name in args.curves.split(",") if name.strip()]
    unknown = sorted(set(args.curves) - set(CURVES))
    if unknown or (args.profile and args.profile not in CURVES):
        parser.error(f"unknown curve; choose from {', '.join(CURVES)}")
    if args.records < WARM_UP or args.keys < 1 or args.rounds < 1:
        parser.error(f"--records must be >= {WARM_UP}, --keys and --rounds >= 1")
    warnings.simplefilter("ignore")  # pyocmf reports spec deviations as warnings
    print(
        f"Ladebuch signed meter value verification benchmark: examine vs cryptography vs pyocmf; "
        f"{len(args.curves)} curves, {args.records:,} records, {args.keys} keys, "
        f"{args.rounds} rounds; Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    started = time.perf_counter()
    report(args, bench(args))
    if args.profile:
        profile(args.profile, args.records, args.keys)
    print(f"total time {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
