"""A customer's market over the API: read it, declare one, withdraw the declaration.

Two doors to the same three verbs (``hub.markets``):

* ``/api/me/market`` with the customer's own token (``hub.http.tokens``, ``gc_…``): the
  customer acts for themselves only; nothing is audited (it is their own data).
* ``/api/customers/{id}/market`` with an operator token: every read and change is audited.

``GET`` → ``hub.markets.market_report`` (market, why, source, declared, inferred) plus
``known`` (what may be declared). ``PUT`` a JSON body ``{"market": M}`` with optionally
``"until"`` (ISO 8601 or epoch) or ``"for"`` (``"3d"``, or seconds) declares ``M``; an unknown
market or a bad time is a 400 that names the problem. ``DELETE`` withdraws (``withdrawn``
says whether there was one). After a change the hub anticipates for the customer at once,
so the retained anticipation is in the new market.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from devices.errors import ConfigError

from ..markets import check_market, declare_market, known_markets, market_report, parse_duration, parse_until, withdraw_market

if TYPE_CHECKING:
    from .app import ApiState

__all__ = ["market_request"]

_MAX_BODY = 4096


async def market_request(request: Request, state: ApiState, customer_id: str) -> Response:
    """Answer GET/PUT/DELETE on the customer's market (the caller has authorised and audited)."""
    hub = state.hub
    service = hub.anticipation
    extra = service.model.markets if service is not None else ()
    now = service.now() if service is not None else time.time()  # the clock anticipation reads "until" by
    withdrawn: bool | None = None
    if request.method == "PUT":
        try:
            market, until = _declaration(await request.body(), now=now, extra=extra)
        except ConfigError as exc:
            return JSONResponse({"error": str(exc), "known": list(known_markets(extra))}, status_code=400)
        await declare_market(hub.store, customer_id, market, until=until, now=now)
    elif request.method == "DELETE":
        withdrawn = await withdraw_market(hub.store, customer_id)
    if request.method != "GET" and service is not None:
        service.request(customer_id)  # the retained anticipation follows the market now
    doc: dict[str, Any] = await market_report(  # the reader sees the change: WAL, committed above
        state.reader, customer_id, hub.snapshot(customer_id), now=now, tz_offset_s=hub.settings.anticipation.tz_offset_s
    )
    if withdrawn is not None:
        doc["withdrawn"] = withdrawn
    doc["known"] = list(known_markets(extra))
    return JSONResponse(doc)


def _declaration(body: bytes, *, now: float, extra: tuple[str, ...] | list[str]) -> tuple[str, float | None]:
    if len(body) > _MAX_BODY:
        raise ConfigError("body too large")
    try:
        doc = json.loads(body or b"{}")
    except ValueError as exc:
        raise ConfigError(f"body must be JSON: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("market"), str):
        raise ConfigError('body must be {"market": "...", "until"?: ISO or epoch, "for"?: "3d" or seconds}')
    market = check_market(doc["market"], extra=extra)
    until_raw, for_raw = doc.get("until"), doc.get("for")
    if until_raw is not None and for_raw is not None:
        raise ConfigError("give until or for, not both")
    if until_raw is not None:
        if not isinstance(until_raw, (str, int, float)) or isinstance(until_raw, bool):
            raise ConfigError("until must be an ISO 8601 time or an epoch number")
        return market, parse_until(until_raw, now=now)
    if for_raw is not None:
        if isinstance(for_raw, bool) or not isinstance(for_raw, (str, int, float)):
            raise ConfigError("for must be a duration like 3d or a number of seconds")
        return market, now + parse_duration(str(for_raw))
    return market, None
