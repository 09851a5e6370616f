"""What we answer to each action a charge point may send, per OCPP version.

Handlers are thin: they read the (schema-validated, exactly parsed) payload, call one ledger
command inside the committer's unit of work, and return the response payload. They run on the
committer thread, so they may use the store synchronously. Routing is the `ocpp` library's
`@on` / `create_route_map`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ocpp.routing import create_route_map, on

from ledger import transactions
from ledger.committer import UnitOfWork
from ledger.frames import FrameRef
from ledger.values import iso, utcnow

Payload = dict[str, Any]


@dataclass(frozen=True)
class CallContext:
    uow: UnitOfWork
    charge_point: str
    protocol: str
    message_id: str
    frame: FrameRef
    received_at: datetime
    heartbeat_interval: int


def _acknowledge(action: str, name: str) -> Any:
    """A handler for a notification whose answer is empty: the frame is the record.

    The `ocpp` library finds handlers by the decorated function's name, so each gets its own.
    """

    def handler(ctx: CallContext, payload: Payload) -> Payload:
        return {}

    handler.__name__ = handler.__qualname__ = name
    return staticmethod(on(action)(handler))


class V16:
    @staticmethod
    @on("BootNotification")
    def boot_notification(ctx: CallContext, payload: Payload) -> Payload:
        return {"currentTime": iso(utcnow()), "interval": ctx.heartbeat_interval, "status": "Accepted"}

    @staticmethod
    @on("Heartbeat")
    def heartbeat(ctx: CallContext, payload: Payload) -> Payload:
        return {"currentTime": iso(utcnow())}

    @staticmethod
    @on("Authorize")
    def authorize(ctx: CallContext, payload: Payload) -> Payload:
        status = transactions.authorization_status(ctx.uow, payload["idTag"], ctx.received_at)
        return {"idTagInfo": {"status": status}}

    @staticmethod
    @on("StartTransaction")
    def start_transaction(ctx: CallContext, payload: Payload) -> Payload:
        transaction_id, status = transactions.start_transaction_16(
            ctx.uow,
            charge_point=ctx.charge_point,
            protocol=ctx.protocol,
            source_frame=ctx.frame,
            payload=payload,
        )
        return {"transactionId": transaction_id, "idTagInfo": {"status": status}}

    @staticmethod
    @on("MeterValues")
    def meter_values(ctx: CallContext, payload: Payload) -> Payload:
        transactions.meter_values_16(
            ctx.uow,
            charge_point=ctx.charge_point,
            protocol=ctx.protocol,
            message_id=ctx.message_id,
            source_frame=ctx.frame,
            payload=payload,
        )
        return {}

    @staticmethod
    @on("StopTransaction")
    def stop_transaction(ctx: CallContext, payload: Payload) -> Payload:
        status = transactions.stop_transaction_16(
            ctx.uow,
            charge_point=ctx.charge_point,
            protocol=ctx.protocol,
            message_id=ctx.message_id,
            source_frame=ctx.frame,
            payload=payload,
        )
        return {} if status is None else {"idTagInfo": {"status": status}}

    @staticmethod
    @on("DataTransfer")
    def data_transfer(ctx: CallContext, payload: Payload) -> Payload:
        # Signed meter data is verified; any other vendor extension is kept in the frame only.
        return {"status": transactions.data_transfer(
            ctx.uow, charge_point=ctx.charge_point, protocol=ctx.protocol,
            message_id=ctx.message_id, source_frame=ctx.frame, payload=payload,
        )}

    @staticmethod
    @on("SignCertificate")
    def sign_certificate(ctx: CallContext, payload: Payload) -> Payload:
        # We run no certificate authority: refuse rather than pretend.
        return {"status": "Rejected"}

    status_notification = _acknowledge("StatusNotification", "status_notification")
    diagnostics_status_notification = _acknowledge("DiagnosticsStatusNotification", "diagnostics_status_notification")
    firmware_status_notification = _acknowledge("FirmwareStatusNotification", "firmware_status_notification")
    # OCPP 1.6 security whitepaper (edition 3) messages.
    security_event_notification = _acknowledge("SecurityEventNotification", "security_event_notification")
    signed_firmware_status_notification = _acknowledge("SignedFirmwareStatusNotification", "signed_firmware_status_notification")
    log_status_notification = _acknowledge("LogStatusNotification", "log_status_notification")


class V201:
    @staticmethod
    @on("BootNotification")
    def boot_notification(ctx: CallContext, payload: Payload) -> Payload:
        return {"currentTime": iso(utcnow()), "interval": ctx.heartbeat_interval, "status": "Accepted"}

    @staticmethod
    @on("Heartbeat")
    def heartbeat(ctx: CallContext, payload: Payload) -> Payload:
        return {"currentTime": iso(utcnow())}

    @staticmethod
    @on("Authorize")
    def authorize(ctx: CallContext, payload: Payload) -> Payload:
        token = payload["idToken"]["idToken"]
        status = transactions.authorization_status(ctx.uow, token, ctx.received_at)
        return {"idTokenInfo": {"status": status}}

    @staticmethod
    @on("TransactionEvent")
    def transaction_event(ctx: CallContext, payload: Payload) -> Payload:
        status = transactions.transaction_event_2(
            ctx.uow,
            charge_point=ctx.charge_point,
            protocol=ctx.protocol,
            source_frame=ctx.frame,
            payload=payload,
        )
        return {} if status is None else {"idTokenInfo": {"status": status}}

    @staticmethod
    @on("DataTransfer")
    def data_transfer(ctx: CallContext, payload: Payload) -> Payload:
        return {"status": transactions.data_transfer(
            ctx.uow, charge_point=ctx.charge_point, protocol=ctx.protocol,
            message_id=ctx.message_id, source_frame=ctx.frame, payload=payload,
        )}

    @staticmethod
    @on("SignCertificate")
    def sign_certificate(ctx: CallContext, payload: Payload) -> Payload:
        return {"status": "Rejected"}

    @staticmethod
    @on("Get15118EVCertificate")
    def get_15118_ev_certificate(ctx: CallContext, payload: Payload) -> Payload:
        return {"status": "Failed", "exiResponse": ""}

    @staticmethod
    @on("GetCertificateStatus")
    def get_certificate_status(ctx: CallContext, payload: Payload) -> Payload:
        return {"status": "Failed"}

    @staticmethod
    @on("NotifyEVChargingNeeds")
    def notify_ev_charging_needs(ctx: CallContext, payload: Payload) -> Payload:
        # We do no smart charging: no schedule will follow.
        return {"status": "Rejected"}

    @staticmethod
    @on("NotifyEVChargingSchedule")
    def notify_ev_charging_schedule(ctx: CallContext, payload: Payload) -> Payload:
        return {"status": "Accepted"}

    # Connector-level readings outside a transaction; the frame keeps them.
    meter_values = _acknowledge("MeterValues", "meter_values")
    status_notification = _acknowledge("StatusNotification", "status_notification")
    firmware_status_notification = _acknowledge("FirmwareStatusNotification", "firmware_status_notification")
    log_status_notification = _acknowledge("LogStatusNotification", "log_status_notification")
    security_event_notification = _acknowledge("SecurityEventNotification", "security_event_notification")
    notify_event = _acknowledge("NotifyEvent", "notify_event")
    notify_report = _acknowledge("NotifyReport", "notify_report")
    notify_monitoring_report = _acknowledge("NotifyMonitoringReport", "notify_monitoring_report")
    notify_charging_limit = _acknowledge("NotifyChargingLimit", "notify_charging_limit")
    cleared_charging_limit = _acknowledge("ClearedChargingLimit", "cleared_charging_limit")
    notify_customer_information = _acknowledge("NotifyCustomerInformation", "notify_customer_information")
    notify_display_messages = _acknowledge("NotifyDisplayMessages", "notify_display_messages")
    publish_firmware_status_notification = _acknowledge("PublishFirmwareStatusNotification", "publish_firmware_status_notification")
    report_charging_profiles = _acknowledge("ReportChargingProfiles", "report_charging_profiles")
    reservation_status_update = _acknowledge("ReservationStatusUpdate", "reservation_status_update")


class V21(V201):
    @staticmethod
    @on("GetCertificateChainStatus")
    def get_certificate_chain_status(ctx: CallContext, payload: Payload) -> Payload:
        return {"certificateStatus": []}

    @staticmethod
    @on("VatNumberValidation")
    def vat_number_validation(ctx: CallContext, payload: Payload) -> Payload:
        return {"vatNumber": payload["vatNumber"], "status": "Rejected"}

    @staticmethod
    @on("OpenPeriodicEventStream")
    def open_periodic_event_stream(ctx: CallContext, payload: Payload) -> Payload:
        return {"status": "Rejected"}

    @staticmethod
    @on("PullDynamicScheduleUpdate")
    def pull_dynamic_schedule_update(ctx: CallContext, payload: Payload) -> Payload:
        return {"status": "Rejected"}

    battery_swap = _acknowledge("BatterySwap", "battery_swap")
    close_periodic_event_stream = _acknowledge("ClosePeriodicEventStream", "close_periodic_event_stream")
    notify_der_alarm = _acknowledge("NotifyDERAlarm", "notify_der_alarm")
    notify_der_start_stop = _acknowledge("NotifyDERStartStop", "notify_der_start_stop")
    notify_priority_charging = _acknowledge("NotifyPriorityCharging", "notify_priority_charging")
    notify_settlement = _acknowledge("NotifySettlement", "notify_settlement")
    report_der_control = _acknowledge("ReportDERControl", "report_der_control")


ROUTES: dict[str, dict[str, dict[str, Any]]] = {
    "1.6": create_route_map(V16),
    "2.0.1": create_route_map(V201),
    "2.1": create_route_map(V21),
}
