"""The operator API and dashboard as a Starlette app (``create_app``).

Routes (JSON unless said; all but ``/``, ``/static`` and ``/healthz`` need a bearer token):

==========================================  ========  ===================================
``/healthz``                                 anyone    ``{"status": "ok"|"starting"}`` only
``/metrics``                                 viewer    Prometheus text
``/api/whoami``                              viewer    the token's id, name and role
``/api/edges``                               viewer    fleet rows (no device inventory)
``/api/alarms``                              viewer    alarms now
``/api/dead-letters``                        viewer    counts by reason; operators also get rows
``/api/throughput``                          viewer    counter samples for the chart
``/api/stream``                              viewer    SSE ``fleet`` events; ``?customer=`` adds
                                                       ``customer`` events (operator, audited)
``/api/customers``                           operator  customers with edge and event counts
``/api/customers/{id}/context``              operator  context, market (and any declared), privacy (audited)
``/api/customers/{id}/events``               operator  ``?since=&limit=`` (audited)
``/api/customers/{id}/anticipations``        operator  recent anticipations, sacrifice (audited)
``/api/customers/{id}/market``               operator  GET/PUT/DELETE the market (audited;
                                                       ``hub.http.market``)
``/api/me/market``                           customer  the same for the token's own customer
==========================================  ========  ===================================

No or a bad token is a 401 that says nothing else; a viewer on an operator route is a 403,
and so is a customer token on any staff route or a staff token on a ``/api/me`` route.
The token comes in ``Authorization: Bearer …``; ``/api/stream`` also takes ``?token=``
(``EventSource`` cannot send headers).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from devices.errors import StorageError

from ..markets import declaration
from . import customers as cust
from .audit import record_read
from .market import market_request
from .metrics import IngestMetrics, render_metrics
from .monitor import FleetMonitor
from .settings import HttpSettings
from .tokens import TokenInfo, verify_token

if TYPE_CHECKING:
    from ..service import Hub
    from ..store import Store

__all__ = ["ApiState", "create_app"]

log = logging.getLogger(__name__)

STATIC = Path(__file__).with_name("static")
_CUSTOMER = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
MAX_STREAMS = 32
_MARKET_METHODS = ["GET", "PUT", "DELETE"]


@dataclass(slots=True)
class ApiState:
    hub: Hub
    reader: Store  # read-only connection: API reads never queue behind ingest commits
    monitor: FleetMonitor
    ingest: IngestMetrics
    settings: HttpSettings
    queries: cust.CustomerQueries = field(default_factory=cust.default_queries)  # anticipations, sacrifice
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    streams: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(MAX_STREAMS))


Handler = Callable[[Request, ApiState, TokenInfo], Awaitable[Response]]


def _unauthorized() -> JSONResponse:
    return JSONResponse({"error": "unauthorized"}, status_code=401, headers={"WWW-Authenticate": "Bearer"})


def _guard(
    handler: Handler, *, operator: bool = False, query_token: bool = False, customer: bool = False, anyone: bool = False
) -> Callable[[Request], Awaitable[Response]]:
    """Authenticate (401), authorise (403), then call ``handler(request, state, who)``.

    Staff routes (the default) take viewer and operator tokens (``operator``: only the
    latter); ``customer`` routes take only a customer token; ``anyone`` takes every token.
    """

    async def endpoint(request: Request) -> Response:
        state: ApiState = request.app.state.api
        header = request.headers.get("authorization", "")
        token = header[7:] if header[:7].lower() == "bearer " else None
        if token is None and query_token:
            token = request.query_params.get("token")
        who = await verify_token(state.reader, token)
        if who is None:
            return _unauthorized()
        if customer:
            if who.customer_id is None:
                return JSONResponse({"error": "forbidden", "needs": "customer"}, status_code=403)
        elif not (anyone or who.is_staff):
            return JSONResponse({"error": "forbidden", "needs": "operator" if operator else "viewer"}, status_code=403)
        elif operator and not who.is_operator:
            return JSONResponse({"error": "forbidden", "needs": "operator"}, status_code=403)
        try:
            return await handler(request, state, who)
        except StorageError as exc:
            log.error("operator api: %s", exc)
            return JSONResponse({"error": "storage unavailable"}, status_code=503)

    return endpoint


async def _customer_or_404(request: Request, state: ApiState) -> str | Response:
    cid = str(request.path_params["customer_id"])
    if not _CUSTOMER.fullmatch(cid) or not (
        cid in state.hub.context.customers or await cust.customer_exists(state.reader, cid)
    ):
        return JSONResponse({"error": "no such customer"}, status_code=404)
    return cid


# -- open routes -------------------------------------------------------------------------------
async def index(request: Request) -> Response:
    return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})


async def healthz(request: Request) -> Response:
    state: ApiState = request.app.state.api
    return JSONResponse({"status": "ok" if state.hub.ready.is_set() else "starting"})


# -- fleet (viewer) ----------------------------------------------------------------------------
async def metrics(request: Request, state: ApiState, who: TokenInfo) -> Response:
    text = render_metrics(state.hub, state.ingest, state.monitor.latest)
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4; charset=utf-8")


async def whoami(request: Request, state: ApiState, who: TokenInfo) -> Response:
    doc: dict[str, Any] = {"token_id": who.token_id, "name": who.name, "role": who.role}
    if who.customer_id is not None:
        doc["customer_id"] = who.customer_id
    return JSONResponse(doc)


async def edges(request: Request, state: ApiState, who: TokenInfo) -> Response:
    snap = state.monitor.latest or await state.monitor.refresh()
    return JSONResponse({"ts": snap.ts, "edges": [e.to_json() for e in snap.edges]})


async def alarms(request: Request, state: ApiState, who: TokenInfo) -> Response:
    snap = state.monitor.latest or await state.monitor.refresh()
    return JSONResponse({"ts": snap.ts, "alarms": [a.to_json() for a in snap.alarms]})


async def dead_letters(request: Request, state: ApiState, who: TokenInfo) -> Response:
    doc: dict[str, Any] = {"counts": dict(sorted(state.hub.dead_letters.counts.items()))}
    if who.is_operator:  # rows name customers and hold raw payloads
        limit = _int(request.query_params.get("limit"), 100, state.settings.max_rows)
        rows = await state.reader.dead_letters(reason=request.query_params.get("reason"), limit=limit)
        doc["rows"] = [
            {"ts": r.ts, "topic": r.topic, "customer_id": r.customer_id, "edge_id": r.edge_id, "reason": r.reason,
             "detail": r.detail, "raw_preview": r.raw[:200].decode("utf-8", errors="replace"), "raw_bytes": len(r.raw)}
            for r in rows
        ]
    return JSONResponse(doc)


async def throughput(request: Request, state: ApiState, who: TokenInfo) -> Response:
    return JSONResponse({"samples": [s.to_json() for s in state.monitor.history]})


# -- customers (operator) ----------------------------------------------------------------------
async def customers(request: Request, state: ApiState, who: TokenInfo) -> Response:
    rows = await state.reader.customers()
    return JSONResponse({"customers": [
        {"customer_id": c.customer_id, "edges": c.edges, "events": c.events, "first_seen": c.first_seen} for c in rows
    ]})


async def _context_doc(state: ApiState, cid: str) -> dict[str, Any]:
    snapshot = state.hub.snapshot(cid)
    recent = await cust.anticipations(state.queries, state.reader, cid, limit=1)
    service = state.hub.anticipation
    held = await declaration(state.reader, cid, now=service.now() if service is not None else time.time())
    return {
        "customer_id": cid,
        "market": recent[0].get("market") if recent and isinstance(recent[0], dict) else None,
        "declared": None if held is None else {"market": held.market, "until": held.until},
        "context": snapshot,
        "privacy": cust.privacy_policy(snapshot),
    }


async def context(request: Request, state: ApiState, who: TokenInfo) -> Response:
    cid = await _customer_or_404(request, state)
    if isinstance(cid, Response):
        return cid
    await record_read(state.hub.store, who, cid, "context")
    return JSONResponse(await _context_doc(state, cid))


async def events(request: Request, state: ApiState, who: TokenInfo) -> Response:
    cid = await _customer_or_404(request, state)
    if isinstance(cid, Response):
        return cid
    try:
        since = float(request.query_params["since"]) if "since" in request.query_params else None
    except ValueError:
        return JSONResponse({"error": "since must be a UTC epoch number"}, status_code=400)
    limit = _int(request.query_params.get("limit"), 100, state.settings.max_rows)
    await record_read(state.hub.store, who, cid, "events", detail=f"since={since} limit={limit}")
    rows = await cust.events(state.reader, cid, since=since, limit=limit)
    return JSONResponse({"customer_id": cid, "since": since, "limit": limit, "events": rows})


async def anticipations(request: Request, state: ApiState, who: TokenInfo) -> Response:
    cid = await _customer_or_404(request, state)
    if isinstance(cid, Response):
        return cid
    limit = _int(request.query_params.get("limit"), 20, state.settings.max_rows)
    await record_read(state.hub.store, who, cid, "anticipations", detail=f"limit={limit}")
    return JSONResponse({
        "customer_id": cid,
        "anticipations": await cust.anticipations(state.queries, state.reader, cid, limit=limit),
        "sacrifice": await cust.sacrifice(state.queries, state.reader, cid),
    })


async def customer_market(request: Request, state: ApiState, who: TokenInfo) -> Response:
    cid = await _customer_or_404(request, state)
    if isinstance(cid, Response):
        return cid
    await record_read(state.hub.store, who, cid, "market", detail=request.method)
    return await market_request(request, state, cid)


# -- the customer's own routes (customer token) --------------------------------------------------
async def my_market(request: Request, state: ApiState, who: TokenInfo) -> Response:
    assert who.customer_id is not None  # _guard(customer=True)
    return await market_request(request, state, who.customer_id)


# -- live stream -------------------------------------------------------------------------------
async def stream(request: Request, state: ApiState, who: TokenInfo) -> Response:
    cid = request.query_params.get("customer")
    if cid is not None:
        if not who.is_operator:
            return JSONResponse({"error": "forbidden", "needs": "operator"}, status_code=403)
        if not _CUSTOMER.fullmatch(cid):
            return JSONResponse({"error": "no such customer"}, status_code=404)
        await record_read(state.hub.store, who, cid, "stream", detail="context, live")
    if state.streams.locked():
        return JSONResponse({"error": "too many streams"}, status_code=503)
    return StreamingResponse(
        _events(state, cid), media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _events(state: ApiState, customer_id: str | None) -> AsyncIterator[str]:
    """SSE: one ``fleet`` event per monitor refresh (plus ``customer``), until the hub stops."""
    async with state.streams:
        yield "retry: 2000\n\n"
        seq = 0
        interval = state.settings.stream_interval_s
        while not state.stopping.is_set():
            snap = await state.monitor.wait_newer(seq, timeout=interval * 3)
            if state.stopping.is_set():
                break
            if snap is None:
                yield ": keepalive\n\n"
                continue
            seq = snap.seq
            yield _sse("fleet", snap.summary())
            if customer_id is not None:
                yield _sse("customer", await _context_doc(state, customer_id))


def _sse(event: str, doc: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(doc, separators=(',', ':'), allow_nan=False, default=str)}\n\n"


def _int(raw: str | None, default: int, cap: int) -> int:
    try:
        value = int(raw) if raw is not None else default
    except ValueError:
        value = default
    return max(1, min(value, cap))


def create_app(state: ApiState) -> Starlette:
    routes = [
        Route("/", index),
        Route("/healthz", healthz),
        Route("/metrics", _guard(metrics)),
        Route("/api/whoami", _guard(whoami, anyone=True)),
        Route("/api/edges", _guard(edges)),
        Route("/api/alarms", _guard(alarms)),
        Route("/api/dead-letters", _guard(dead_letters)),
        Route("/api/throughput", _guard(throughput)),
        Route("/api/stream", _guard(stream, query_token=True)),
        Route("/api/customers", _guard(customers, operator=True)),
        Route("/api/customers/{customer_id}/context", _guard(context, operator=True)),
        Route("/api/customers/{customer_id}/events", _guard(events, operator=True)),
        Route("/api/customers/{customer_id}/anticipations", _guard(anticipations, operator=True)),
        Route("/api/customers/{customer_id}/market", _guard(customer_market, operator=True), methods=_MARKET_METHODS),
        Route("/api/me/market", _guard(my_market, customer=True), methods=_MARKET_METHODS),
        Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(routes=routes)
    app.state.api = state
    return app
