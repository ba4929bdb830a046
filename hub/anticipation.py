"""``AnticipationService``: the hub anticipates each customer's next job and learns from them.

    service = await AnticipationService.start(store, context, settings.anticipation, publisher=...)
    hub.on_committed.append(service.on_committed)      # events in (debounced per customer)
    await service.run()                                # until cancelled

**When.** ``debounce_s`` after the last commit that stored events of a customer (a burst of
batches → one anticipation; a steady stream still gets one at least every
``4 × debounce_s``), and every ``interval_s`` for each customer active within ``active_s``.

**What.** Per customer the service keeps its recent events in numpy columns
(``hub.recent.RecentEvents``), already mapped onto the model schema's vocabularies (device
and room names the model does not know are dropped; a text value becomes 0.0, since text
capabilities are activation-only), no older than the schema's ``since_cap_s`` and at most
``max_events``; ``max_rows_total`` bounds them over all customers (the least recently
active give theirs up first). A customer first touched since start, or whose events were
given up, is primed from the store. The market comes from ``hub.markets``. Features,
recognition, next job and explanations run off the event loop (``asyncio.to_thread``); the
personal layer of (customer, market) adjusts the probabilities; the top ``top`` jobs go out
as a **retained** ``Anticipation`` on ``genius/v1/{customer}/anticipations`` and into the
``anticipations`` table. ``because`` holds the signals that drove each job (occlusion,
``models.inference.because``) and, when the personal layer moved the probability by at
least ``personal_note_min``, what the customer taught it.

**Learning.** The recognition head names the job going on now; a job *begins* when it is
named on ``confirm_runs`` consecutive runs (or once with probability ≥ ``switch_p``). Then
a ``recognised_jobs`` row is written, the job is observed into the personal layer of the
market of the last anticipation published before it began, and **sacrifice** =
1 − the probability that anticipation gave the job is stored. Explicit feedback
(``accepted``/``dismissed``/``done`` rows that ingest stores from the feedback topic) is read
from the ``feedback`` table as soon as ingest reports a commit that stored some
(``on_committed`` wakes the feedback loop), and at the latest every ``feedback_poll_s``
(the safety net), and updates the layer of the anticipation it names (for its job, or
its top job). A durable cursor (the newest feedback id applied) makes each row count once.
Unknown jobs and anticipations are counted and skipped; nothing here stops the hub.
Feedback stored before this start is not replayed (the cursor starts at the newest row).

**Market.** ``hub.markets.market_now``: the customer's declared market while it is in
force, else the inferred one; the next anticipation after a declaration, a withdrawal or
an expiry uses it, and so does the personal layer it reads and teaches.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
import uuid
from collections import Counter, OrderedDict
from collections.abc import Callable, Sequence
from itertools import repeat
from operator import attrgetter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from devices.capabilities import KIND
from devices.errors import ModelError, SchemaMismatch
from devices.topics import anticipations_topic
from devices.wire import Anticipation, JobForecast
from models.artifact import default_artifact
from models.features import EventWindow, features_at, warmup
from models.inference import Anticipator, RecognitionState, because
from models.personalise import Context, PersonalLayer
from models.schema import FeatureSchema, feature_code_hash

from .context import ContextFuser
from .http.metrics import AnticipationFigures
from .markets import market_now
from .personalisation import PersonalLayers
from .recent import RecentEvents
from .pipeline import CommitSummary
from .rights import Publish
from .settings import AnticipationSettings
from .store import Store
from .validation import WireEvent, wire_event

__all__ = ["AnticipationService", "load_model", "sacrifice_series", "anticipations_for", "current_markets"]

log = logging.getLogger(__name__)

_MODELS: dict[tuple[str, float], Anticipator] = {}
_BURST_CAP = 4.0  # a steady stream is anticipated at least every this many debounce periods
_FEEDBACK_PAGE = 500  # feedback rows read per query

_TS, _DEVICE, _CAPABILITY, _VALUE = attrgetter("ts"), attrgetter("device"), attrgetter("capability"), attrgetter("value")
_ROOM, _SEQ = attrgetter("room"), attrgetter("seq")


def load_model(settings: AnticipationSettings) -> Anticipator | None:
    """The configured model (cached per path and mtime), or None when the default is not shipped.

    A configured path that does not load raises ``ModelError``; a schema that does not match
    the running feature code raises ``SchemaMismatch`` (the hub must not start on it).
    """
    path = Path(settings.model_path) if settings.model_path is not None else default_artifact()
    meta = path / "meta.json"
    if settings.model_path is None and not meta.is_file():
        log.warning("no model artifact shipped at %s: anticipation is off", path)
        return None
    try:
        key = (str(path.resolve()), meta.stat().st_mtime)
    except OSError as exc:
        raise ModelError(f"no model artifact at {path}: {exc}") from exc
    model = _MODELS.get(key)
    if model is None:
        model = Anticipator.load(path)
        _check_schema(model)
        _MODELS[key] = model
        warmup()
    return model


def _check_schema(model: Anticipator) -> None:
    """Refuse a model trained on other features than the running code computes.

    Checked here as well as in ``models.artifact.read_meta``: a schema rebuilt from its fields
    (not ``model_copy``, which would carry the stored schema's cached hash along).
    """
    stored = model.schema
    running = FeatureSchema.model_validate({**stored.model_dump(), "code_hash": feature_code_hash()})
    try:
        running.check(stored)
    except SchemaMismatch as exc:
        raise SchemaMismatch(f"model {model.model_id} at {model.path}: {exc}", expected=exc.expected,
                             found=exc.found) from exc


@dataclass(slots=True)
class _Last:
    """The last anticipation published for a customer (what sacrifice is measured against)."""

    id: str
    market: str
    context: Context
    p_global: NDArray[np.float64]
    p: NDArray[np.float64]


@dataclass(slots=True)
class _Customer:
    events: RecentEvents = field(default_factory=RecentEvents)
    primed: bool = False
    priming: bool = False  # the store is being read into ``events``
    recognition: RecognitionState = field(default_factory=RecognitionState)
    job: int = -1  # the recognised job after hysteresis
    candidate: int = -1
    candidate_runs: int = 0
    last: _Last | None = None
    active: float = 0.0  # wall clock of the newest commit
    # Monotonic time of the oldest commit not yet anticipated (latency is real seconds even
    # when the hub runs on a simulated clock).
    first_commit: float | None = None


@dataclass(slots=True)
class _Run:
    t: float
    market: str
    recognition: NDArray[np.float32]
    x: NDArray[np.float32]
    p_global: NDArray[np.float64]
    expected: NDArray[np.float32]


class AnticipationService:
    """Anticipate per customer on commits and on a timer; learn from what they do (module doc)."""

    def __init__(
        self,
        store: Store,
        context: ContextFuser,
        settings: AnticipationSettings,
        model: Anticipator,
        *,
        publisher: Callable[[], Publish | None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.context = context
        self.settings = settings
        self.model = model
        self._publisher = publisher
        self._clock = clock
        schema = model.schema
        self._schema = schema
        self._devices = {name: i for i, name in enumerate(schema.devices)}
        self._rooms = {name: i for i, name in enumerate(schema.rooms)}
        self._caps = {name: i for i, name in enumerate(schema.capabilities)}
        self._markets = {name: i for i, name in enumerate(schema.markets)}
        self._jobs = {name: i for i, name in enumerate(model.jobs)}
        if max(len(schema.devices), len(schema.rooms), len(schema.capabilities)) >= np.iinfo(np.int16).max:
            raise ModelError(f"{model.model_id}: vocabularies this large do not fit the hub's event buffer")
        self._text_caps = np.array([KIND.get(name) == "text" for name in schema.capabilities] + [False])
        self._edge_codes: dict[str, int] = {}
        self._held = 0  # rows held in memory over all customers (bounded by max_rows_total)
        self.shed = 0  # times a customer's rows were dropped to stay within max_rows_total
        self.layers = PersonalLayers(store, model.jobs, strength=settings.personal_strength,
                                     max_cached=settings.max_customers, clock=clock)
        self._customers: OrderedDict[str, _Customer] = OrderedDict()
        self._due: dict[str, float] = {}  # customer → monotonic time to anticipate
        self._wake = asyncio.Event()
        self._feedback_wake = asyncio.Event()  # set by a commit that stored feedback
        self._feedback_cursor = 0
        self._feedback_lock = asyncio.Lock()  # one reader of the cursor at a time: each row counts once
        self.figures = AnticipationFigures()
        self._sacrifice_sums: dict[str, list[float]] = {}
        self.compute_latency: list[float] = []  # seconds from due to published (bounded)
        self.skipped: Counter[str] = Counter()
        self.published_at: dict[str, float] = {}
        self.markets: dict[str, str] = {}  # customer → market of the last anticipation

    @classmethod
    async def start(
        cls,
        store: Store,
        context: ContextFuser,
        settings: AnticipationSettings,
        *,
        publisher: Callable[[], Publish | None],
        clock: Callable[[], float] = time.time,
    ) -> AnticipationService | None:
        """Load the model off the loop and build the service; None when no model is shipped."""
        model = await asyncio.to_thread(load_model, settings)
        if model is None:
            return None
        service = cls(store, context, settings, model, publisher=publisher, clock=clock)
        async with store.db.execute("SELECT COALESCE(MAX(id), 0) FROM feedback") as cur:
            row = await cur.fetchone()
        service._feedback_cursor = int(row[0]) if row else 0
        log.info("anticipation with %s (%d jobs, %d markets)", model.model_id, len(model.jobs), len(model.markets))
        return service

    def now(self) -> float:
        """The service's clock: wall time, or the simulated time the hub runs on."""
        return self._clock()

    # -- figures for hub.http.metrics -------------------------------------------------------------
    def metrics(self) -> AnticipationFigures:
        self.figures.sacrifice = {m: s / n for m, (s, n) in self._sacrifice_sums.items() if n}
        return self.figures

    # -- events in (hot path: the ingest writer calls this after each commit) --------------------
    def on_committed(self, summary: CommitSummary) -> None:
        now = self._clock()
        mono = time.monotonic()
        for customer_id, edge_id, events in summary.batches:
            state = self._customer(customer_id)
            columns = self._columns(events, self._edge_code(edge_id))
            self._insert(state, columns)
            state.active = now
            if state.first_commit is None:
                state.first_commit = mono
            # Push the run back on every commit, but never past _BURST_CAP debounce periods
            # after the first commit it has not covered yet.
            debounce = self.settings.debounce_s
            self._due[customer_id] = min(mono + debounce, state.first_commit + _BURST_CAP * debounce)
        if summary.batches:
            self._wake.set()
            if self._held > self.settings.max_rows_total:
                self._shed()
        if summary.feedback:
            self._feedback_wake.set()

    def _customer(self, customer_id: str) -> _Customer:
        state = self._customers.get(customer_id)
        if state is None:
            state = self._customers[customer_id] = _Customer()
            while len(self._customers) > self.settings.max_customers:
                old, gone = self._customers.popitem(last=False)
                self._held -= len(gone.events)
                self._due.pop(old, None)
                self.published_at.pop(old, None)
        else:
            self._customers.move_to_end(customer_id)
        return state

    def _edge_code(self, edge_id: str) -> int:
        code = self._edge_codes.get(edge_id)
        if code is None:
            code = self._edge_codes[edge_id] = len(self._edge_codes)
        return code

    def _columns(self, events: Sequence[WireEvent], edge: int | NDArray[np.int32]) -> dict[str, NDArray[Any]]:
        """Wire event structs → buffer columns in the model's vocabulary.

        Events whose device and room the model does not know, or whose capability it does
        not know, contribute no feature and are left out; a text value becomes 0.0 (text
        capabilities only activate). One C-level pass per column (``map`` over attribute
        lookups): this runs after every ingest commit.
        """
        n = len(events)
        device = np.fromiter(map(self._devices.get, map(_DEVICE, events), repeat(-1)), np.int16, n)
        room = np.fromiter(map(self._rooms.get, map(_ROOM, events), repeat(-1)), np.int16, n)
        cap = np.fromiter(map(self._caps.get, map(_CAPABILITY, events), repeat(-1)), np.int16, n)
        value = np.array([0.0 if v.__class__ is str else v for v in map(_VALUE, events)], dtype=np.float64)
        value[self._text_caps[cap]] = 0.0  # cap -1 reads the trailing False
        columns = {
            "ts": np.fromiter(map(_TS, events), np.float64, n),
            "device": device, "room": room, "capability": cap, "value": value,
            "edge": np.broadcast_to(np.asarray(edge, dtype=np.int32), (n,)),
            "seq": np.fromiter(map(_SEQ, events), np.int64, n),
        }
        keep = ((device >= 0) | (room >= 0)) & (cap >= 0)
        if not keep.all():
            columns = {name: col[keep] for name, col in columns.items()}
        return columns

    def _insert(self, state: _Customer, columns: dict[str, NDArray[Any]]) -> None:
        events = state.events
        before = len(events)
        events.extend(**columns)
        if len(events):
            newest = float(events.column("ts")[-1])
            events.trim(horizon=newest - self._schema.since_cap_s, max_events=self.settings.max_events)
        self._held += len(events) - before

    def _shed(self) -> None:
        """Over ``max_rows_total``: drop the rows of the least recently active customers.

        The store holds every event, so a shed customer is primed again from it before its
        next anticipation; only memory is given up, never data.
        """
        for state in self._customers.values():  # least recently touched first
            if self._held <= self.settings.max_rows_total * 0.9:
                break
            if state.priming or not len(state.events):
                continue
            self._held -= len(state.events)
            state.events.clear()
            state.primed = False
            self.shed += 1

    # -- the service --------------------------------------------------------------------------
    async def run(self) -> None:
        """Anticipate and learn until cancelled."""
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._scheduler(), name="anticipation-scheduler")
            tg.create_task(self._timer(), name="anticipation-timer")
            tg.create_task(self._feedback_loop(), name="anticipation-feedback")

    def request(self, customer_id: str, *, delay_s: float = 0.0) -> None:
        """Anticipate for ``customer_id`` after ``delay_s`` (the operator, tests, the timer)."""
        due = time.monotonic() + delay_s
        self._due[customer_id] = min(self._due.get(customer_id, due), due)
        self._customer(customer_id)
        self._wake.set()

    async def _scheduler(self) -> None:
        while True:
            self._wake.clear()
            mono = time.monotonic()
            ready = sorted((due, c) for c, due in self._due.items() if due <= mono)
            for _, customer_id in ready:
                self._due.pop(customer_id, None)
                try:
                    await self.anticipate(customer_id)
                except asyncio.CancelledError:
                    raise
                except Exception:  # one customer's failure never stops the others
                    self.skipped["error"] += 1
                    log.exception("anticipation for %s failed", customer_id)
            if ready:
                continue
            wait = min((due for due in self._due.values()), default=mono + 3600.0) - mono
            try:
                async with asyncio.timeout(max(wait, 0.0)):
                    await self._wake.wait()
            except TimeoutError:
                pass

    async def _timer(self) -> None:
        while True:
            await asyncio.sleep(self.settings.interval_s)
            now = self._clock()
            for customer_id, state in list(self._customers.items()):
                recent = now - self.published_at.get(customer_id, -math.inf) < self.settings.interval_s
                # Only quiet customers need the timer: commits already anticipate busy ones.
                if now - state.active <= self.settings.active_s and customer_id not in self._due and not recent:
                    self.request(customer_id)

    async def _feedback_loop(self) -> None:
        while True:
            try:
                async with asyncio.timeout(self.settings.feedback_poll_s):
                    await self._feedback_wake.wait()
            except TimeoutError:
                pass  # the slow poll: feedback committed without a hook call is applied anyway
            self._feedback_wake.clear()
            try:
                await self.apply_feedback()
            except asyncio.CancelledError:
                raise
            except Exception:
                self.skipped["feedback_error"] += 1
                log.exception("applying feedback failed")

    # -- one anticipation -----------------------------------------------------------------------
    async def anticipate(self, customer_id: str) -> Anticipation | None:
        """Anticipate now for one customer, learn from what began, publish and store."""
        started = time.perf_counter()
        state = self._customer(customer_id)
        if not state.primed:
            await self._prime(customer_id, state)
        t = self._clock()
        reading = await market_now(self.store, customer_id, self.context.snapshot(customer_id, now=t), now=t,
                                   tz_offset_s=self.settings.tz_offset_s)
        market = reading.market
        window = state.events.window(t - self._schema.since_cap_s, t)
        run = await asyncio.to_thread(self._compute, state, window, t, market)
        await self._recognise(customer_id, state, run)
        layer = await self.layers.get(customer_id, market)
        job, since = state.recognition.inputs(t)
        ctx = Context.at(t, last_job=job, job_since_s=since, tz_offset_s=self.settings.tz_offset_s)
        p = layer.adjust(run.p_global, ctx)
        top = [int(j) for j in np.argsort(-p, kind="stable")[: self.settings.top]]
        reasons = await asyncio.to_thread(lambda: [self.model.explain(run.x, j) for j in top])
        jobs = self.model.jobs
        theta = layer.multiplier(ctx)
        moved = p - run.p_global
        rising = int(np.argmax(moved))
        forecasts = []
        for j, why in zip(top, reasons):
            sentences = because(why, jobs[j])
            note = _personal_note(layer, ctx, j, float(moved[j]), self.settings.personal_note_min, jobs,
                                  theta=float(theta[j]), rising=rising if moved[rising] > 0 else -1)
            if note:
                sentences.append(note)
            forecasts.append(JobForecast(job=jobs[j], probability=float(min(max(p[j], 0.0), 1.0)),
                                         expected_in_s=float(max(run.expected[j], 0.0)), because=sentences))
        antic = Anticipation(id=uuid.uuid4().hex, customer_id=customer_id, market=market, ts=t,
                             model=self.model.model_id, jobs=forecasts)
        latency = None if state.first_commit is None else max(time.monotonic() - state.first_commit, 0.0)
        state.first_commit = None
        state.last = _Last(antic.id, market, ctx, run.p_global, p)
        self.markets[customer_id] = market
        await self._store(antic, ctx, latency)
        publish = self._publisher()
        if publish is None:
            self.skipped["disconnected"] += 1
        else:
            await publish(anticipations_topic(customer_id), antic.model_dump_json().encode(), qos=1, retain=True)
            self.figures.published += 1
            self.published_at[customer_id] = self._clock()
            if latency is not None:
                self.figures.latency.observe(latency)
        if len(self.compute_latency) < 100_000:
            self.compute_latency.append(time.perf_counter() - started)
        return antic

    def _compute(self, state: _Customer, window: EventWindow, t: float, market: str) -> _Run:
        """Features, recognition and both heads for one customer at ``t`` (in a worker thread)."""
        model = self.model
        x = features_at(self._schema, window, t, market=self._markets.get(market, -1),
                        tz_offset_s=self.settings.tz_offset_s)[None, :]
        recognition = model.recognise(x)[0]
        state.recognition.update(t, recognition)
        x = model.with_context(x, *state.recognition.inputs(t))
        p_global = model.next_job(x)[0].astype(np.float64)
        expected = model.expected_in(x)[0]
        return _Run(t, market, recognition, x[0], p_global, expected)

    async def _prime(self, customer_id: str, state: _Customer) -> None:
        """Load the customer's recent events from the store (first touch since start)."""
        state.priming = True
        try:
            frame = await self.store.events_for(customer_id, since=self._clock() - self._schema.since_cap_s)
            events = [wire_event(seq, ts, device, cap, value, room)
                      for ts, _edge, seq, device, cap, value, room in frame.rows()]
            edges = np.fromiter(map(self._edge_code, frame.edge_id), np.int32, len(frame))
            loaded = self._columns(events, edges)
            seen = set(zip(loaded["edge"].tolist(), loaded["seq"].tolist()))
            # What ingest handed over before and while the store was read, and the read missed.
            held = state.events
            held_keys = zip(held.column("edge").tolist(), held.column("seq").tolist())
            kept = held.select(np.array([k not in seen for k in held_keys], dtype=np.bool_))
            self._held -= len(held)
            state.events = RecentEvents()
            self._insert(state, loaded)
            self._insert(state, kept)
        finally:
            state.priming = False
            state.primed = True

    async def _recognise(self, customer_id: str, state: _Customer, run: _Run) -> None:
        """Hysteresis over the recognition head; a job that begins teaches the layer."""
        rec = run.recognition
        best = int(np.argmax(rec))
        named = -1 if best == rec.shape[0] - 1 else best
        if named == state.candidate:
            state.candidate_runs += 1
        else:
            state.candidate, state.candidate_runs = named, 1
        switch = named != state.job and (
            state.candidate_runs >= self.settings.confirm_runs or float(rec[best]) >= self.settings.switch_p
        )
        if not switch:
            return
        state.job = named
        if named < 0:
            return
        await self.job_began(customer_id, state, named, market=run.market, t=run.t, probability=float(rec[best]))

    async def job_began(
        self, customer_id: str, state: _Customer, job: int, *, market: str, t: float, probability: float
    ) -> None:
        """Record that ``job`` began at ``t``; observe it and measure sacrifice against the last anticipation."""
        name = self.model.jobs[job]
        last = state.last
        async with self.store.transaction() as db:
            await db.execute(
                "INSERT INTO recognised_jobs (customer_id, market, job, begin, probability) VALUES (?,?,?,?,?)",
                (customer_id, market, name, t, probability),
            )
            if last is not None:
                given = float(last.p[job])
                await db.execute(
                    "INSERT INTO sacrifice (customer_id, market, ts, job, anticipation_id, probability, sacrifice)"
                    " VALUES (?,?,?,?,?,?,?)",
                    (customer_id, last.market, t, name, last.id, given, 1.0 - given),
                )
        if last is None:
            return
        sums = self._sacrifice_sums.setdefault(last.market, [0.0, 0])
        sums[0] += 1.0 - float(last.p[job])
        sums[1] += 1
        layer = await self.layers.get(customer_id, last.market)
        layer.observe(last.context, job, last.p_global)
        await self.layers.save(customer_id, last.market, layer)

    async def _store(self, antic: Anticipation, ctx: Context, latency: float | None) -> None:
        jobs = json.dumps([j.model_dump(mode="json") for j in antic.jobs], separators=(",", ":"))
        async with self.store.transaction() as db:
            await db.execute(
                "INSERT INTO anticipations (id, customer_id, market, ts, model, jobs, context, latency_s)"
                " VALUES (?,?,?,?,?,?,?,?)",
                (antic.id, antic.customer_id, antic.market, antic.ts, antic.model, jobs,
                 json.dumps(ctx._asdict()), latency),
            )

    # -- explicit feedback ----------------------------------------------------------------------
    async def apply_feedback(self) -> int:
        """Apply every feedback row stored since the last call; returns how many taught a layer."""
        applied = 0
        async with self._feedback_lock:
            while True:
                n, taught = await self._apply_feedback_page()
                applied += taught
                if n < _FEEDBACK_PAGE:
                    return applied

    async def _apply_feedback_page(self) -> tuple[int, int]:
        sql = f"""
            SELECT f.id, c.customer_id, f.anticipation_id, f.verdict, f.job
            FROM feedback f JOIN customers c USING (customer_key) WHERE f.id > ? ORDER BY f.id LIMIT {_FEEDBACK_PAGE}
        """
        # One thread hop (not three): this runs after every ingest commit, mostly finding nothing.
        rows = list(await self.store.db.execute_fetchall(sql, (self._feedback_cursor,)))
        applied = 0
        for fid, customer_id, anticipation_id, verdict, job_name in rows:
            self._feedback_cursor = int(fid)
            async with self.store.db.execute(
                "SELECT market, jobs, context FROM anticipations WHERE id = ? AND customer_id = ?",
                (anticipation_id, customer_id),
            ) as cur:
                found = await cur.fetchone()
            if found is None:
                self.skipped["feedback_unknown_anticipation"] += 1
                continue
            market, jobs_json, ctx_json = found
            name = job_name or (json.loads(jobs_json) or [{}])[0].get("job")
            job = self._jobs.get(name, -1) if name else -1
            if job < 0:
                self.skipped["feedback_unknown_job"] += 1
                continue
            ctx = Context(**json.loads(ctx_json))
            layer = await self.layers.get(customer_id, market)
            layer.feedback(ctx, job, verdict)
            await self.layers.save(customer_id, market, layer)
            applied += 1
        return len(rows), applied

    def forget(self, customer_id: str) -> None:
        """Drop everything held in memory about the customer (erasure)."""
        gone = self._customers.pop(customer_id, None)
        if gone is not None:
            self._held -= len(gone.events)
        self._due.pop(customer_id, None)
        self.markets.pop(customer_id, None)
        self.published_at.pop(customer_id, None)
        self.layers.forget(customer_id)


def _value(capability: str, value: Any) -> float:
    if KIND.get(capability) == "text" or isinstance(value, str):
        return 0.0  # text capabilities only activate (rule "event"): the value itself is unused
    return float(value)


_SINCE_TEXT = ("", "while it is going on", "within 15 min of it", "within the hour after it", "within 4 h of it", "")


def _personal_note(
    layer: PersonalLayer, ctx: Context, job: int, moved: float, minimum: float, jobs: Sequence[str],
    *, theta: float, rising: int,
) -> str | None:
    """What the customer taught the layer about ``job`` here, when it moved the probability.

    ``theta`` is the layer's own multiplier for the job: a job that fell only because another
    (``rising``) took its share is said so, not blamed on the customer's dismissals.
    """
    if abs(moved) < minimum or not math.isfinite(moved):
        return None
    points = f"{'+' if moved > 0 else '−'}{abs(moved) * 100:.0f} pts"
    if moved < 0 and theta >= 0.95:
        if 0 <= rising < len(jobs) and rising != job:
            return f"less likely here since you usually choose to {jobs[rising].replace('_', ' ')} ({points})"
        return None
    buckets = layer.to_dict()["buckets"]
    name = jobs[job]
    count = 0.0
    where = "in this context"
    for key, text in zip(reversed(ctx.buckets()), _where(ctx, jobs)):
        observed = buckets.get(key, {}).get(name, [0.0, 0.0])[0]
        if observed > 0:
            count, where = observed, text
            break
    if moved > 0 and count:
        return f"you did or accepted this {count:g} times {where} ({points})"
    if moved > 0:
        return f"you do this more often than most here ({points})"
    return f"you dismissed or skipped this here before ({points})"


def _where(ctx: Context, jobs: Sequence[str]) -> list[str]:
    """Words for the buckets of ``ctx``, finest first (as ``reversed(ctx.buckets())``)."""
    hour = f"around {ctx.hour:02d}:00"
    after = f"after {jobs[ctx.last_job].replace('_', ' ')}" if 0 <= ctx.last_job < len(jobs) else "with nothing before"
    since = _SINCE_TEXT[ctx.since] if 0 <= ctx.since < len(_SINCE_TEXT) else ""
    return [f"{hour} {after} {since}".strip(), f"{hour} {after}", after, hour, "in this market"]


# -- queries for the operator API and the demo (Store.anticipations_for / sacrifice_series) ------
async def anticipations_for(store: Store, customer_id: str, *, limit: int = 20) -> list[Anticipation]:
    """The customer's latest anticipations, newest first."""
    async with store.db.execute(
        "SELECT id, customer_id, market, ts, model, jobs FROM anticipations WHERE customer_id = ?"
        " ORDER BY ts DESC, seq DESC LIMIT ?",
        (customer_id, limit),
    ) as cur:
        rows = await cur.fetchall()
    return [
        Anticipation(id=i, customer_id=c, market=m, ts=ts, model=model, jobs=[JobForecast(**j) for j in json.loads(jobs)])
        for i, c, m, ts, model, jobs in rows
    ]


async def sacrifice_series(store: Store, customer_id: str) -> list[dict[str, Any]]:
    """``{"ts", "market", "job", "sacrifice"}`` per recognised job, oldest first."""
    async with store.db.execute(
        "SELECT ts, market, job, sacrifice FROM sacrifice WHERE customer_id = ? ORDER BY ts, id", (customer_id,)
    ) as cur:
        return [{"ts": ts, "market": m, "job": j, "sacrifice": s} for ts, m, j, s in await cur.fetchall()]


async def current_markets(store: Store) -> dict[str, str]:
    """Each customer's market as their latest anticipation named it."""
    sql = """
        SELECT a.customer_id, a.market FROM anticipations a
        JOIN (SELECT customer_id, MAX(seq) AS seq FROM anticipations GROUP BY customer_id) m USING (customer_id, seq)
    """
    async with store.db.execute(sql) as cur:
        return {c: m for c, m in await cur.fetchall()}
