"""Markets: the context a customer is in now (DESIGN.md, "Markets"), inferred on the hub.

``infer_market(snapshot, roles, now=...)`` reads the customer's fused context
(``ContextFuser.snapshot``) and each edge's declared role; the first rule that applies wins:

1. **declared**: the customer declared a market (``declare_market``) that has not expired.
2. **venue check-in**: the newest ``checkin`` event of the customer, on any edge, read by the
   *kind* of venue it came from (see ``venue_kind``):

   - a lodging (``hotel``) ``arrival`` with no ``departure`` after it, within
     ``STAY_MAX_S`` → ``travel:business`` (a customer sleeping at a hotel is on a trip; the
     simulated households only stay in hotels for work);
   - any other kind (``gym`` …) entered (``entry``/``arrival``) within ``VISIT_S`` with no
     ``exit``/``departure`` after it → ``venue:<kind>``.
3. **holiday home**: the edge where something last moved is a ``holiday_home`` edge, within
   ``AWAY_S`` → ``travel:leisure``.
4. **hosting**: a device or room whose name holds ``guest`` moved within ``VISIT_S`` →
   ``hosting`` (a guest room, a guest-mode switch: the only guest signal there is today).
5. **calendar**: ``home:weekend`` on the customer's Saturday and Sunday, else
   ``home:weekday``.

Venue kind, first that applies: the role ``venue:<kind>``; a role that is itself a kind
(``hotel``, ``gym``); a kind named in the edge id (``c1-hotel``, ``gym-3``); the check-in
vocabulary (``arrival``/``departure`` are a lodging's front desk, ``entry``/``exit`` a
member gate, so a gym). An unknown kind falls back to ``venue:other``.

The market is one input of the features and half of the personalisation key.

**Declaring.** A customer (``genius customer market``, the customer's own API token on
``/api/me/market``, or an operator on ``/api/customers/{id}/market``) declares one of
``known_markets()`` — the markets DESIGN.md names, ``venue:<kind>`` for every venue kind
this module reads, plus the markets of the running model — for a while (``until``) or until
withdrawn. ``market_now`` is what the next anticipation will use, and why. A declaration
carries ``customer_id``, so erasing the customer erases it (``hub.rights``).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple

from devices.errors import ConfigError

from .store import Store

__all__ = [
    "AWAY_S",
    "BASE_MARKETS",
    "LODGING",
    "STAY_MAX_S",
    "VISIT_S",
    "Declaration",
    "MarketReading",
    "check_market",
    "declaration",
    "declare_market",
    "declared_market",
    "edge_roles",
    "infer_market",
    "known_markets",
    "market_now",
    "market_report",
    "parse_duration",
    "parse_until",
    "venue_kind",
    "withdraw_market",
]

STAY_MAX_S = 14 * 86400.0
VISIT_S = 3 * 3600.0
AWAY_S = 86400.0
LODGING = frozenset({"hotel", "hostel", "lodging", "apartment"})
_KINDS = ("hotel", "hostel", "gym", "pool", "spa", "cafe", "office", "cinema")
_ENTER = frozenset({"arrival", "entry", "check_in", "checkin", "in"})
_LEAVE = frozenset({"departure", "exit", "check_out", "checkout", "out"})
_ACTIVITY = frozenset({"occupancy", "contact", "switch", "lock", "action", "media", "checkin", "presence"})
# The markets DESIGN.md names (venue:<kind> aside): what a customer may always declare.
BASE_MARKETS: tuple[str, ...] = ("home:weekday", "home:weekend", "travel:business", "travel:leisure", "hosting")


class MarketReading(NamedTuple):
    market: str
    why: str  # which rule decided, in words (for the operator and the demo)


class Declaration(NamedTuple):
    """A market the customer declared: ``until`` None means until withdrawn (UTC epoch s)."""

    market: str
    until: float | None
    declared: float


def known_markets(extra: Iterable[str] = ()) -> tuple[str, ...]:
    """Markets a customer may declare: DESIGN.md's, ``venue:<kind>`` per non-lodging kind, ``extra``.

    ``extra`` is typically the running model's market vocabulary (``Anticipator.markets``).
    """
    # A lodging is a trip (travel:*), never venue:<lodging>: infer_market never says that either.
    venues = tuple(f"venue:{kind}" for kind in (*_KINDS, "other") if kind not in LODGING)
    return tuple(dict.fromkeys((*BASE_MARKETS, *venues, *extra)))


def check_market(market: str, *, extra: Iterable[str] = ()) -> str:
    """``market`` if a customer may declare it, else ``ConfigError`` naming the known ones."""
    known = known_markets(extra)
    if market not in known:
        raise ConfigError(f"unknown market {market!r}; known markets: {', '.join(known)}")
    return market


def venue_kind(edge_id: str, role: str | None, checkin_value: str | None = None) -> str:
    """The kind of venue an edge is (``hotel``, ``gym`` …); ``other`` when nothing says."""
    role = (role or "").lower()
    if role.startswith("venue:") and len(role) > 6:
        return role[6:]
    if role in _KINDS or role in LODGING:
        return role
    lowered = edge_id.lower()
    for kind in _KINDS:
        if kind in lowered:
            return kind
    value = (checkin_value or "").lower()
    if value in ("arrival", "departure"):
        return "hotel"
    if value in ("entry", "exit"):
        return "gym"
    return "other"


def _weekend(now: float, tz_offset_s: float) -> bool:
    return datetime.fromtimestamp(now + tz_offset_s, UTC).weekday() >= 5


def infer_market(
    snapshot: Mapping[str, Any],
    roles: Mapping[str, str | None],
    *,
    now: float,
    declared: str | None = None,
    tz_offset_s: float = 0.0,
) -> MarketReading:
    """The customer's market now (see the module docstring for the rules, in order)."""
    if declared:
        return MarketReading(declared, "declared by the customer")
    latest = list(snapshot.get("latest", ()))
    checkins = [e for e in latest if e.get("capability") == "checkin" and isinstance(e.get("value"), str)]
    if checkins:
        last = max(checkins, key=lambda e: e["ts"])
        edge, value = str(last["edge_id"]), str(last["value"]).lower()
        kind = venue_kind(edge, roles.get(edge), value)
        age = now - float(last["ts"])
        if value in _ENTER:
            if kind in LODGING and age <= STAY_MAX_S:
                return MarketReading("travel:business", f"checked in at {edge} ({kind})")
            if kind not in LODGING and age <= VISIT_S:
                return MarketReading(f"venue:{kind}", f"entered {edge} ({kind})")
    moved: dict[str, float] = {}
    for e in latest:
        if e.get("capability") in _ACTIVITY and e.get("value") is not False:
            moved[e["edge_id"]] = max(moved.get(e["edge_id"], 0.0), float(e["ts"]))
    for room in snapshot.get("rooms", ()):
        seen = room.get("last_activation") or room.get("last_activity") or 0.0
        moved[room["edge_id"]] = max(moved.get(room["edge_id"], 0.0), float(seen))
    if moved:
        edge = max(moved, key=lambda k: moved[k])
        if roles.get(edge) == "holiday_home" and now - moved[edge] <= AWAY_S:
            return MarketReading("travel:leisure", f"last activity at {edge} (holiday home)")
    for e in latest:
        name = f"{e.get('device', '')} {e.get('room') or ''}".lower()
        if "guest" in name and e.get("capability") in _ACTIVITY and now - float(e["ts"]) <= VISIT_S:
            return MarketReading("hosting", f"guest activity on {e.get('device')}")
    if _weekend(now, tz_offset_s):
        return MarketReading("home:weekend", "a weekend day")
    return MarketReading("home:weekday", "a weekday")


# -- store: roles and declared markets --------------------------------------------------------
async def edge_roles(store: Store, customer_id: str) -> dict[str, str | None]:
    """Each of the customer's edges and its role (stored, or as its last status declared)."""
    sql = """
        SELECT e.edge_id, COALESCE(e.role, json_extract(e.status, '$.role'))
        FROM edges e JOIN customers c USING (customer_key) WHERE c.customer_id = ?
    """
    async with store.db.execute(sql, (customer_id,)) as cur:
        return {edge: role for edge, role in await cur.fetchall()}


async def declare_market(
    store: Store, customer_id: str, market: str, *, until: float | None = None, now: float | None = None
) -> None:
    """The customer says which market they are in (until ``until``, or until withdrawn)."""
    if not market or len(market) > 64:
        raise ValueError(f"market {market!r} must be 1..64 characters")
    async with store.transaction() as db:
        await db.execute(
            "INSERT OR REPLACE INTO declared_markets (customer_id, market, until, declared) VALUES (?,?,?,?)",
            (customer_id, market, until, time.time() if now is None else now),
        )


async def withdraw_market(store: Store, customer_id: str) -> bool:
    """Withdraw a declared market; False if none was declared."""
    async with store.transaction() as db:
        cur = await db.execute("DELETE FROM declared_markets WHERE customer_id = ?", (customer_id,))
        return cur.rowcount > 0


async def declared_market(store: Store, customer_id: str, *, now: float) -> str | None:
    """The customer's declared market if it has not expired."""
    async with store.db.execute(
        "SELECT market FROM declared_markets WHERE customer_id = ? AND (until IS NULL OR until > ?)", (customer_id, now)
    ) as cur:
        row = await cur.fetchone()
    return None if row is None else str(row[0])


async def declaration(store: Store, customer_id: str, *, now: float) -> Declaration | None:
    """The customer's declaration in force at ``now`` (None when none, or it expired)."""
    async with store.db.execute(
        "SELECT market, until, declared FROM declared_markets WHERE customer_id = ? AND (until IS NULL OR until > ?)",
        (customer_id, now),
    ) as cur:
        row = await cur.fetchone()
    return None if row is None else Declaration(str(row[0]), None if row[1] is None else float(row[1]), float(row[2]))


async def market_now(
    store: Store, customer_id: str, snapshot: Mapping[str, Any], *, now: float, tz_offset_s: float = 0.0
) -> MarketReading:
    """The market the customer's next anticipation uses: declared, else inferred (and why)."""
    roles = await edge_roles(store, customer_id)
    declared = await declared_market(store, customer_id, now=now)
    return infer_market(snapshot, roles, now=now, declared=declared, tz_offset_s=tz_offset_s)


async def market_report(
    store: Store, customer_id: str, snapshot: Mapping[str, Any], *, now: float, tz_offset_s: float = 0.0
) -> dict[str, Any]:
    """JSON-ready: the market now and why, the declaration in force, and what inference says.

    Keys: ``customer_id``, ``ts``, ``market``, ``why``, ``source`` (``declared``/``inferred``),
    ``declared`` (``market``, ``until`` epoch or null, ``until_iso``, ``declared``; or null),
    ``inferred`` (``market``, ``why``: the market once the declaration ends).
    """
    roles = await edge_roles(store, customer_id)
    held = await declaration(store, customer_id, now=now)
    inferred = infer_market(snapshot, roles, now=now, tz_offset_s=tz_offset_s)
    reading = MarketReading(held.market, "declared by the customer") if held else inferred
    return {
        "customer_id": customer_id,
        "ts": now,
        "market": reading.market,
        "why": reading.why,
        "source": "declared" if held else "inferred",
        "declared": None if held is None else {
            "market": held.market, "until": held.until, "declared": held.declared,
            "until_iso": None if held.until is None else datetime.fromtimestamp(held.until, UTC).isoformat(),
        },
        "inferred": {"market": inferred.market, "why": inferred.why},
    }


_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*")
_UNIT_S = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 7 * 86400.0}


def parse_duration(text: str) -> float:
    """Seconds in ``30s``, ``90m``, ``12h``, ``3d``, ``2w`` or a plain number of seconds (> 0)."""
    match = _DURATION.fullmatch(text.lower())
    seconds = float(match.group(1)) * _UNIT_S[match.group(2)] if match else math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise ConfigError(f"duration {text!r} must be a positive number with an optional unit s, m, h, d or w")
    return seconds


def parse_until(value: str | float, *, now: float) -> float:
    """A UTC epoch from an epoch number or an ISO 8601 time (no offset means UTC), after ``now``."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        until = float(value)
    else:
        try:
            moment = datetime.fromisoformat(str(value).strip())
        except ValueError as exc:
            raise ConfigError(f"until {value!r} must be an ISO 8601 time (2026-05-01T18:00+02:00) or epoch") from exc
        until = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
    if not (math.isfinite(until) and until > now):
        raise ConfigError(f"until {value!r} is not in the future")
    return until
