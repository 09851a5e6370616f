"""Where signed meter data sits in OCPP messages.

1.6: a `SampledValue` with `format: "SignedData"` whose `value` is the signed data (plain OCMF,
hex, base64 or the OCA JSON wrapper), in MeterValues.meterValue and StopTransaction.transactionData.
2.0.1/2.1: `SampledValue.signedMeterValue {signedMeterData, signingMethod, encodingMethod,
publicKey}`; the publicKey is optional in 2.1.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SignedValue:
    data: str  # as it came; the verifier unwraps it
    claimed_key: str | None
    context: str | None  # Transaction.Begin, Sample.Periodic, Transaction.End, ...
    measurand: str | None
    timestamp: str | None  # the MeterValue's timestamp, as sent


def signed_values(meter_values: Any) -> list[SignedValue]:
    """Every signed value in a list of OCPP MeterValue objects (1.6 or 2.x); tolerant of shape."""
    found: list[SignedValue] = []
    if not isinstance(meter_values, list):
        return found
    for meter_value in meter_values:
        if not isinstance(meter_value, dict):
            continue
        timestamp = meter_value.get("timestamp")
        samples = meter_value.get("sampledValue")
        if not isinstance(samples, list):
            continue
        for sampled in samples:
            if not isinstance(sampled, dict):
                continue
            value = _signed(sampled)
            if value is not None:
                data, key = value
                found.append(
                    SignedValue(
                        data,
                        key,
                        _text(sampled.get("context")),
                        _text(sampled.get("measurand")),
                        _text(timestamp),
                    )
                )
    return found


def _signed(sampled: dict[str, Any]) -> tuple[str, str | None] | None:
    signed = sampled.get("signedMeterValue")
    if isinstance(signed, dict):
        data = signed.get("signedMeterData")
        if isinstance(data, str) and data:
            # Re-wrapped as the OCA note's JSON so the verifier reads data and key alike.
            return json.dumps(
                {
                    "signedMeterData": data,
                    "encodingMethod": _text(signed.get("encodingMethod")) or "",
                    "signingMethod": _text(signed.get("signingMethod")) or "",
                }
            ), _text(signed.get("publicKey")) or None
    if sampled.get("format") == "SignedData":
        value = sampled.get("value")
        if isinstance(value, str) and value:
            return value, None
    return None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None
