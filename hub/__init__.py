"""The Genius hub: ingest, idempotent storage, per-customer context, anticipation, data rights, operator API."""

from .catalog import Catalog, EdgeEntry
from .context import ContextFuser
from .deadletters import DeadLetter, DeadLetters
from .ingest import SUBSCRIPTIONS, CommitHook, Ingest, IngestStats
from .markets import MarketReading, declare_market, declared_market, infer_market, venue_kind, withdraw_market
from .pipeline import CommitSummary, Incoming, Pipeline
from .progress import EdgeProgress, SeqRanges
from .rights import ErasureReport, ErasureWatcher, export_customer, forget_customer
from .schema import MIGRATIONS, SCHEMA_VERSION, Migration
from .service import Hub, serve
from .settings import AnticipationSettings, BrokerSettings, ContextSettings, HubSettings, IngestSettings, StoreSettings
from .status import render_status, status_report
from .store import CustomerRecord, EdgeRecord, EventFrame, FeedbackRecord, Store, WriteGroup, decode_value
from .validation import WireBatch, WireEvent, decode_wire_batch, wire_event

__all__ = [
    "MIGRATIONS", "AnticipationSettings", "MarketReading", "declare_market", "declared_market", "infer_market",
    "venue_kind", "withdraw_market", "SCHEMA_VERSION", "SUBSCRIPTIONS", "BrokerSettings", "Catalog", "CommitHook",
    "CommitSummary", "ContextFuser", "ContextSettings", "CustomerRecord", "DeadLetter", "DeadLetters",
    "EdgeEntry", "EdgeProgress", "ErasureReport", "ErasureWatcher", "EdgeRecord", "EventFrame", "FeedbackRecord", "Hub", "HubSettings",
    "Incoming", "Ingest", "IngestSettings", "IngestStats", "Migration", "Pipeline", "SeqRanges", "Store",
    "StoreSettings", "WriteGroup", "WireBatch", "WireEvent", "decode_wire_batch", "wire_event", "decode_value", "export_customer", "forget_customer", "render_status", "serve",
    "status_report",
]
