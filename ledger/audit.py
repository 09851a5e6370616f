"""Tamper evidence: recompute every charge point's frame chain and name the first broken link."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ledger.application import Ledger
from ledger.frames import GENESIS, FrameLog, chain_hash

_PAGE = 1000


@dataclass(frozen=True)
class BrokenLink:
    charge_point: str
    seq: int
    reason: str

    def __str__(self) -> str:
        return f"{self.charge_point} frame {self.seq}: {self.reason}"


@dataclass(frozen=True)
class ChainReport:
    charge_point: str
    frames: int
    broken: BrokenLink | None


def verify_chain(ledger: Ledger, charge_point: str) -> ChainReport:
    """Reads the stored records themselves (not the cache) and checks, record by record, that
    the sequence has no gap, that each points to its predecessor's hash, and that its own hash
    matches its content."""
    log_id = FrameLog.create_id(charge_point)
    expected_seq = 2  # version 1 is the log's Opened event
    prev = GENESIS
    frames = 0
    gt = 1
    while True:
        page = ledger.recorder.select_events(log_id, gt=gt, limit=_PAGE)
        for stored in page:
            seq = stored.originator_version
            if seq != expected_seq:
                return ChainReport(
                    charge_point, frames, BrokenLink(charge_point, expected_seq, "record missing")
                )
            try:
                record = ledger.mapper.to_domain_event(stored)
            except Exception as exc:  # noqa: BLE001 - an unreadable record is a broken link
                return ChainReport(
                    charge_point, frames, BrokenLink(charge_point, seq, f"record unreadable: {exc}")
                )
            if not isinstance(record, FrameLog.Recorded):
                return ChainReport(
                    charge_point, frames, BrokenLink(charge_point, seq, "not a frame record")
                )
            if record.prev_hash != prev:
                return ChainReport(
                    charge_point,
                    frames,
                    BrokenLink(charge_point, seq, "does not point to the previous record's hash"),
                )
            recomputed = chain_hash(
                charge_point,
                seq,
                record.direction,
                record.protocol,
                record.received_at,
                record.text,
                record.data_b64,
                record.prev_hash,
            )
            if recomputed != record.hash:
                return ChainReport(
                    charge_point,
                    frames,
                    BrokenLink(charge_point, seq, "content does not match its hash (edited)"),
                )
            prev = record.hash
            expected_seq += 1
            frames += 1
        if len(page) < _PAGE:
            return ChainReport(charge_point, frames, None)
        gt = page[-1].originator_version


def verify_chains(ledger: Ledger, charge_points: Iterable[str]) -> list[ChainReport]:
    return [verify_chain(ledger, cp) for cp in charge_points]
