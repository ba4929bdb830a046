"""Operator API, metrics and dashboard of the hub (``genius hub run --http HOST:PORT``)."""

from .alarms import Alarm, GapTracker, alarms_from_db, evaluate_alarms
from .audit import AuditEntry, audit_entries, record_read
from .fleet import EdgeRow, read_edges
from .metrics import AnticipationFigures, AnticipationSource, Histogram, IngestMetrics, render_metrics
from .settings import AlarmSettings, HttpSettings, parse_listen
from .tokens import (
    CUSTOMER,
    ROLES,
    Role,
    TokenInfo,
    create_customer_token,
    create_token,
    hash_token,
    list_tokens,
    revoke_customer_tokens,
    verify_token,
)

__all__ = [
    "CUSTOMER", "ROLES", "Alarm", "AlarmSettings", "AnticipationFigures", "AnticipationSource", "AuditEntry", "EdgeRow",
    "GapTracker", "Histogram", "HttpSettings", "IngestMetrics", "Role", "TokenInfo", "alarms_from_db",
    "audit_entries", "create_customer_token", "create_token", "evaluate_alarms", "hash_token", "list_tokens", "parse_listen",
    "read_edges", "record_read", "render_metrics", "revoke_customer_tokens", "verify_token",
]
