"""Plan each resident's days into job runs (ground truth) and device effects.

The planner walks one resident's time with a cursor: each job starts at its anchor time
(wake, dinner, bed … drawn around the resident's own habits) or when the previous job ends,
whichever is later, so a resident's labels never overlap. Time between jobs is spent in a
base room (or asleep in bed), which still moves the PIR sensors but is not labelled.
Effects (presence per room, appliance power, contacts, buttons, showers, reader taps) are
gathered per device and turned into sensor reports by ``sensors``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from .calendar import Calendar, Trip
from .jobs import MOTION_RATE, TEMPLATE_JOB, TEMPLATES
from .people import ResidentSpec
from .places import PlaceSpec
from .population import CustomerSpec

__all__ = ["DAY", "Effects", "JobRun", "plan_runs"]

DAY = 86400.0
H = 3600.0
_ROOM_FALLBACK = {"lobby": "room", "bedroom": "room", "bathroom": "room", "kitchen": "room", "living": "room",
                  "hallway": "room", "office": "living"}
_CONTACT_FALLBACK = {"front_door": "room_door"}
_APPLIANCE_FALLBACK = {"coffee_machine": "kettle"}
_OPEN_SECONDS = {"fridge": (5.0, 60.0), "locker": (5.0, 40.0)}


class JobRun(NamedTuple):
    """Ground truth for one job: who did what, in which market, where, from when to when."""

    resident: int
    job: str
    market: str
    edge_id: str
    begin: float
    end: float


Key = tuple[str, str]  # (edge id, room or device key)


@dataclass
class Effects:
    """Everything the residents did to the devices, per (edge, room) or (edge, device key)."""

    presence: dict[Key, list[tuple[float, float, float]]] = field(default_factory=lambda: defaultdict(list))
    power: dict[Key, list[tuple[float, float, float]]] = field(default_factory=lambda: defaultdict(list))
    relay: dict[Key, list[tuple[float, float]]] = field(default_factory=lambda: defaultdict(list))
    contact: dict[Key, list[tuple[float, float]]] = field(default_factory=lambda: defaultdict(list))
    button: dict[Key, list[tuple[float, str]]] = field(default_factory=lambda: defaultdict(list))
    shower: dict[Key, list[tuple[float, float]]] = field(default_factory=lambda: defaultdict(list))
    checkin: dict[Key, list[tuple[float, str]]] = field(default_factory=lambda: defaultdict(list))


class _Person:
    """One resident's cursor through time, writing runs and effects."""

    def __init__(self, index: int, spec: ResidentSpec, home: PlaceSpec, rng: np.random.Generator,
                 effects: Effects, runs: list[JobRun], t0: float) -> None:
        self.i = index
        self.r = spec
        self.home = home
        self.place: PlaceSpec | None = home
        self.rng = rng
        self.fx = effects
        self.runs = runs
        self.cursor = t0
        self.asleep = True

    # time between jobs ---------------------------------------------------------------------
    def fill(self, until: float) -> None:
        if until > self.cursor and self.place is not None:
            if self.asleep:
                room, rate = _room(self.place, "bedroom"), MOTION_RATE["sleep"]
            else:
                room, rate = self.place.base_room(), MOTION_RATE["idle"]
            self.fx.presence[(self.place.edge_id, room)].append((self.cursor, until, rate))
        self.cursor = max(self.cursor, until)

    def leave(self) -> None:
        self.place = None

    def arrive(self, place: PlaceSpec, at: float) -> None:
        self.fill(at)
        self.place = place

    # jobs ------------------------------------------------------------------------------------
    def job(self, template: str, market: str, *, at: float | None = None, duration: float | None = None,
            label: bool = True, button_p: float | None = None) -> float:
        """Run ``template`` from ``at`` (or now, if later); returns its end time."""
        place = self.place
        assert place is not None, "a job needs a place"
        begin = self.cursor if at is None else max(self.cursor, at)
        self.fill(begin)
        rng, edge = self.rng, place.edge_id
        t = begin
        phases = TEMPLATES[template]
        for ph in phases:
            if duration is not None and len(phases) == 1:
                dur = duration
            else:
                dur = float(rng.uniform(ph.lo, ph.hi)) * self.r.speed
            device = None
            if ph.appliance is not None:
                device = place.device(ph.appliance) or place.device(_APPLIANCE_FALLBACK.get(ph.appliance, ""))
            room = device.room if device is not None else _room(place, ph.room)
            if ph.motion != "none":
                self.fx.presence[(edge, room)].append((t, t + dur, MOTION_RATE[ph.motion]))
            if device is not None:
                self._appliance(edge, device.key, device.appliance or "", device.watts, t, dur, ph.cycle)
                if ph.relay:
                    self.fx.relay[(edge, device.key)].append((t, t + dur))
            if ph.contact is not None:
                self._contact(place, ph.contact, t, dur, ph.opens)
            if ph.button is not None:
                p = self.r.button_p if button_p is None else button_p
                button = place.device("bedside_button")
                if button is not None and rng.random() < p:
                    self.fx.button[(edge, button.key)].append((t + float(rng.uniform(1.0, 20.0)), ph.button))
            if ph.shower:
                self.fx.shower[(edge, room)].append((t, t + dur))
            if ph.checkin is not None:
                reader = place.device("reader")
                if reader is not None:
                    self.fx.checkin[(edge, reader.key)].append((t + float(rng.uniform(5.0, 60.0)), ph.checkin))
            t += dur
        if label:
            self.runs.append(JobRun(self.i, TEMPLATE_JOB.get(template, template), market, edge, begin, t))
        self.cursor = t
        self.asleep = template == "go_to_bed" or (self.asleep and template == "bed_to_toilet")
        return t

    def _appliance(self, edge: str, key: str, appliance: str, watts: float, t: float, dur: float,
                   cycle: tuple[float, float] | None) -> None:
        out = self.fx.power[(edge, key)]
        if cycle is None:
            out.append((t, t + dur, watts))
            return
        rng = self.rng
        length = float(rng.uniform(*cycle))
        start = t + dur * float(rng.uniform(0.5, 1.0))  # the machine starts once loaded
        heat = float(rng.uniform(720.0, 1500.0))
        heater = float(rng.uniform(1800.0, 2200.0))
        tail_w = float(rng.uniform(420.0, 620.0)) if appliance == "washer" else heater * 0.9
        tail = float(rng.uniform(480.0, 900.0))
        out.append((start, start + 180.0, watts))
        out.append((start + 180.0, start + 180.0 + heat, heater))
        out.append((start + 180.0 + heat, start + length - tail, watts))
        out.append((start + length - tail, start + length, tail_w))

    def _contact(self, place: PlaceSpec, name: str, t: float, dur: float, opens: int) -> None:
        device = place.device(name) or place.device(_CONTACT_FALLBACK.get(name, ""))
        if device is None:
            return
        rng = self.rng
        lo, hi = _OPEN_SECONDS.get(device.key, (2.0, 12.0))
        part = dur / opens
        for k in range(opens):
            t_open = t + k * part + float(rng.uniform(0.0, 0.3)) * part
            t_close = t_open + min(float(rng.uniform(lo, hi)), 0.6 * part)
            self.fx.contact[(place.edge_id, device.key)].append((t_open, t_close))


def _room(place: PlaceSpec, room: str) -> str:
    if room in place.rooms:
        return room
    fallback = _ROOM_FALLBACK.get(room)
    if fallback is not None and fallback in place.rooms:
        return fallback
    return place.base_room()


@dataclass
class _Shared:
    """Times the household agrees on: holiday departures and arrivals, guests' visits."""

    trips: dict[Trip, dict[str, float]]
    guests: dict[int, tuple[float, float]]


def plan_runs(spec: CustomerSpec, calendar: Calendar, *, t0: float, rng: np.random.Generator) -> tuple[list[JobRun], Effects]:
    """Plan every resident's ``calendar.n_days`` days from midnight ``t0`` (UTC epoch seconds)."""
    effects = Effects()
    runs: list[JobRun] = []
    shared = _Shared({}, {})
    for trip in calendar.trips:
        mid = t0 + trip.depart * DAY
        back = t0 + trip.back * DAY
        shared.trips[trip] = {
            "leave": mid + float(rng.uniform(9.0, 15.0)) * H,
            "travel": float(rng.uniform(1.5, 4.5)) * H,
            "check_out": back + float(rng.uniform(9.5, 11.5)) * H,
        }
    for day in sorted(calendar.hosting):
        arrive = t0 + day * DAY + float(rng.uniform(18.0, 19.8)) * H
        shared.guests[day] = (arrive, arrive + float(rng.uniform(2.5, 4.5)) * H)
    for i, resident in enumerate(spec.residents):
        person_rng = np.random.default_rng([spec.seed, i, int(t0 // DAY)])
        person = _Person(i, resident, spec.home, person_rng, effects, runs, t0)
        planner = _DayPlanner(spec, calendar, shared, person, t0)
        for day in range(calendar.n_days):
            planner.day(day)
        person.fill(t0 + calendar.n_days * DAY)
    for day, (arrive, leave) in shared.guests.items():
        # the guests themselves: moving about, and the door when they go
        home = spec.home.edge_id
        effects.presence[(home, "living")].append((arrive, leave, MOTION_RATE["active"]))
        effects.presence[(home, "kitchen")].append((arrive + 0.25 * H, leave - 0.5 * H, MOTION_RATE["calm"]))
        door = spec.home.device("front_door")
        if door is not None:
            effects.contact[(home, door.key)].append((leave, leave + float(rng.uniform(10.0, 60.0))))
    runs.sort(key=lambda r: (r.begin, r.resident))
    return runs, effects


class _DayPlanner:
    def __init__(self, spec: CustomerSpec, calendar: Calendar, shared: _Shared, person: _Person, t0: float) -> None:
        self.spec = spec
        self.cal = calendar
        self.shared = shared
        self.p = person
        self.r = person.r
        self.rng = person.rng
        self.t0 = t0

    def at(self, day: int, hours: float, *, sd: float | None = None) -> float:
        """An anchor time: ``hours`` after the day's midnight, jittered by the resident's regularity."""
        jitter = self.r.jitter if sd is None else sd
        return self.t0 + day * DAY + (hours + float(self.rng.normal(0.0, jitter))) * H

    def market(self, day: int) -> str:
        return "home:weekend" if self.cal.weekend(day) else "home:weekday"

    def night_week(self, day: int) -> bool:
        return self.r.work == "shift" and ((self.cal.weekday0 + day) // 7) % 2 == 1

    # a whole day --------------------------------------------------------------------------
    def day(self, day: int) -> None:
        trip = self.cal.trip(self.p.i, day)
        if trip is not None and trip.kind == "business":
            self.business_day(day, trip)
        elif trip is not None:
            self.holiday_day(day, trip)
        elif self.night_week(day) and not self.cal.weekend(day):
            self.night_shift_day(day)
        else:
            self.home_day(day)

    def wake_hour(self, day: int) -> float:
        r = self.r
        free = self.cal.weekend(day) or r.work == "none"
        if self.night_week(day):
            return 13.0 if not free else 12.0
        return r.wake + (r.weekend_delay if free else 0.0)

    def home_day(self, day: int) -> None:
        p, r, rng = self.p, self.r, self.rng
        market = self.market(day)
        wd = self.cal.weekday(day)
        wake = self.at(day, self.wake_hour(day))
        p.job("wake_up", market, at=wake)
        self.morning(market)
        weekend = self.cal.weekend(day)
        office = not weekend and r.work in ("office", "hybrid", "shift") and wd not in r.remote_days
        remote = not weekend and r.work in ("remote", "hybrid") and wd in r.remote_days
        gym = wd in r.gym_days
        if office:
            leave = p.job("leave_home", market, at=wake + (r.leave_after + float(rng.normal(0, r.jitter))) * H)
            p.leave()
            back = leave + (r.work_hours + float(rng.normal(0, r.jitter))) * H
            if gym and r.gym_evening:
                back = self.gym_visit(back + float(rng.uniform(0.2, 0.5)) * H)
            p.arrive(self.spec.home, back)
            p.job("return_home", market)
        elif remote:
            self.work_from_home(day, market, wake)
        else:
            if gym:
                p.job("leave_home", market, at=p.cursor + float(rng.uniform(0.5, 2.5)) * H)
                p.leave()
                back = self.gym_visit(p.cursor + float(rng.uniform(0.2, 0.5)) * H)
                p.arrive(self.spec.home, back)
                p.job("return_home", market)
            elif rng.random() < r.weekend_out_p:
                p.job("leave_home", market, at=p.cursor + float(rng.uniform(0.5, 3.0)) * H)
                p.leave()
                p.arrive(self.spec.home, p.cursor + float(rng.uniform(1.5, 5.0)) * H)
                p.job("return_home", market)
            if wd in r.laundry_days:
                p.job("laundry", market, at=p.cursor + float(rng.uniform(0.1, 1.0)) * H)
            if rng.random() < r.home_exercise_p:
                p.job("exercise", market, at=p.cursor + float(rng.uniform(0.2, 1.5)) * H)
            self.second_drink(day, market)
        self.evening(day, market, laundry=office or remote)

    def morning(self, market: str) -> None:
        p, r, rng = self.p, self.r, self.rng
        for step in r.morning_order:
            if step == "shower" and not r.shower_evening and rng.random() < r.shower_p:
                p.job("shower", market, at=p.cursor + float(rng.uniform(60, 600)))
            elif step == "drink" and r.drink != "none" and rng.random() < 0.95:
                p.job("make_coffee" if r.drink == "coffee" else "make_tea", market, at=p.cursor + float(rng.uniform(30, 400)))
            elif step == "breakfast" and rng.random() < r.breakfast_p:
                p.job("breakfast", market, at=p.cursor + float(rng.uniform(30, 300)))

    def second_drink(self, day: int, market: str) -> None:
        r = self.r
        if r.drink != "none" and self.rng.random() < r.second_drink_p and self.p.place is not None:
            self.p.job("make_coffee" if r.drink == "coffee" else "make_tea", market, at=self.at(day, 15.5, sd=0.8))

    def work_from_home(self, day: int, market: str, wake: float) -> None:
        p, r, rng = self.p, self.r, self.rng
        end = wake + (r.leave_after + 0.5 + r.work_hours) * H
        p.job("work_from_home", market, at=wake + (r.leave_after + 0.3) * H,
              duration=float(rng.uniform(2.5, 4.0)) * H)
        lunch = max(12.5, self.wake_hour(day) + 4.5)
        p.job("eat", market, at=self.at(day, lunch, sd=0.4), duration=float(rng.uniform(15, 35)) * 60)
        while p.cursor < end - 0.5 * H:
            left = end - p.cursor
            p.job("work_from_home", market, at=p.cursor + float(rng.uniform(60, 900)),
                  duration=min(left, float(rng.uniform(1.5, 3.5)) * H))
            if p.cursor < end - H and r.drink != "none" and rng.random() < r.second_drink_p:
                p.job("make_coffee" if r.drink == "coffee" else "make_tea", market, at=p.cursor + 120)
        wd = self.cal.weekday(day)
        if wd in r.gym_days:
            p.job("leave_home", market, at=p.cursor + float(rng.uniform(0.1, 0.8)) * H)
            p.leave()
            back = self.gym_visit(p.cursor + float(rng.uniform(0.2, 0.5)) * H)
            p.arrive(self.spec.home, back)
            p.job("return_home", market)

    def gym_visit(self, arrive: float) -> float:
        """From outside, visit the gym; returns when the resident could be home again."""
        p, rng = self.p, self.rng
        p.arrive(self.spec.gym, arrive)
        p.job("check_in_gym", "venue:gym")
        p.job("gym_exercise", "venue:gym")
        p.job("check_out_gym", "venue:gym")
        p.leave()
        return p.cursor + float(rng.uniform(0.25, 0.6)) * H

    def evening(self, day: int, market: str, *, laundry: bool) -> None:
        p, r, rng = self.p, self.r, self.rng
        guests = self.shared.guests.get(day)
        if guests is not None:
            arrive, leave = guests
            host = "hosting"
            p.job("host_guests", host, at=arrive - float(rng.uniform(0, 600)))
            if p.i == 0 or rng.random() < 0.3:
                p.job("cook_dinner", host)
            p.job("eat", host, at=arrive + 1.3 * H, duration=float(rng.uniform(0.8, 1.6)) * H)
            p.fill(leave)
            self.dishes(host, at=leave + 300)
        else:
            dinner = self.at(day, r.dinner)
            if rng.random() < r.cook_p:
                p.job("cook_dinner", market, at=dinner - 0.8 * H)
            p.job("eat", market, at=dinner, duration=r.eat_min * 60 * float(rng.uniform(0.7, 1.3)))
            if rng.random() < r.dishes_p:
                self.dishes(market, at=p.cursor + float(rng.uniform(60, 1800)))
        if laundry and self.cal.weekday(day) in r.laundry_days:
            p.job("laundry", market, at=p.cursor + float(rng.uniform(300, 1800)))
        bed = self.bed_anchor(day)
        if rng.random() < r.tv_p:
            tv_at = p.cursor + float(rng.uniform(120, 1800))
            # TV fills the evening, but bed time wins (most nights)
            length = min(r.tv_hours * H * float(rng.uniform(0.5, 1.4)), bed - tv_at - float(rng.uniform(0, 1200)))
            if length > 900:
                p.job("watch_tv", market, at=tv_at, duration=length)
        self.bedtime(day, market, bed)

    def dishes(self, market: str, *, at: float) -> None:
        place = self.p.place
        machine = place is not None and place.device("dishwasher") is not None and self.r.dishwasher
        self.p.job("load_dishwasher" if machine else "wash_dishes", market, at=at)

    def bed_anchor(self, day: int) -> float:
        bed_hour = self.r.bed + (0.4 if self.cal.weekend(day) else 0.0)
        if self.night_week(day):
            bed_hour = 26.5 if self.cal.weekday(day) == 5 else 24.0
        return self.at(day, bed_hour - 0.2)

    def bedtime(self, day: int, market: str, bed: float) -> None:
        p, r, rng = self.p, self.r, self.rng
        if r.shower_evening and rng.random() < r.shower_p and p.place is not None:
            p.job("shower", market, at=bed - 0.6 * H)
        p.job("go_to_bed", market, at=bed)
        self.night(day, market)

    def night(self, day: int, market: str) -> None:
        p, rng = self.p, self.rng
        if p.place is None:
            return
        next_wake = self.t0 + (day + 1) * DAY + self.wake_hour(day + 1) * H
        lo, hi = p.cursor + 0.5 * H, next_wake - 0.75 * H
        n = int(rng.binomial(3, min(self.r.night_toilet / 3.0, 1.0)))  # at most three a night
        if n and hi > lo:
            for t in np.sort(rng.uniform(lo, hi, size=n)):
                p.job("bed_to_toilet", market, at=float(t))

    def night_shift_day(self, day: int) -> None:
        p, r, rng = self.p, self.r, self.rng
        market = self.market(day)
        p.job("wake_up", market, at=self.at(day, 13.0))
        self.morning(market)
        if self.cal.weekday(day) in r.laundry_days:
            p.job("laundry", market, at=p.cursor + float(rng.uniform(0.2, 1.0)) * H)
        if rng.random() < r.cook_p:
            p.job("cook_dinner", market, at=self.at(day, 17.8))
        p.job("eat", market, at=self.at(day, 18.6), duration=r.eat_min * 60)
        if rng.random() < r.tv_p:
            p.job("watch_tv", market, at=p.cursor + 300, duration=min(r.tv_hours, 1.5) * H * float(rng.uniform(0.6, 1.0)))
        p.job("leave_home", market, at=self.at(day, 20.8, sd=0.1))
        p.leave()
        p.arrive(self.spec.home, self.at(day, 30.2, sd=0.15))
        p.job("return_home", market)
        p.job("go_to_bed", market, at=p.cursor + float(rng.uniform(300, 1500)))

    # trips ------------------------------------------------------------------------------------
    def business_day(self, day: int, trip: Trip) -> None:
        p, r, rng = self.p, self.r, self.rng
        biz = "travel:business"
        hotel = self.spec.hotel
        if day == trip.depart:
            self.p.job("wake_up", self.market(day), at=self.at(day, r.wake))
            self.morning(self.market(day))
            p.job("pack", biz)
            p.job("leave_home", biz, at=self.at(day, float(rng.uniform(7.0, 14.0)), sd=0.0))
            p.leave()
            p.arrive(hotel, p.cursor + float(rng.uniform(1.5, 4.5)) * H)
            p.job("check_in_hotel", biz)
            self.hotel_evening(day, biz, out=True)
            return
        p.job("wake_up", biz, at=self.at(day, r.wake - 0.3), button_p=0.95)  # the room's alarm
        p.job("shower", biz, at=p.cursor + float(rng.uniform(60, 600)))
        if r.drink != "none":
            p.job("make_coffee" if r.drink == "coffee" else "make_tea", biz)
        if day == trip.back:
            p.job("pack", biz)
            p.job("check_out_hotel", biz)
            p.leave()
            p.arrive(self.spec.home, p.cursor + float(rng.uniform(2.0, 6.0)) * H)
            p.job("return_home", biz)
            self.evening(day, self.market(day), laundry=False)
            return
        self.hotel_evening(day, biz, out=True)

    def hotel_evening(self, day: int, market: str, *, out: bool) -> None:
        p, r, rng = self.p, self.r, self.rng
        hotel = self.spec.hotel
        if out:  # meetings, dinner out: the room is empty, then the guest comes back
            p.job("step_out", market, label=False)
            p.leave()
            p.arrive(hotel, max(p.cursor + H, self.at(day, float(rng.uniform(19.0, 21.5)), sd=0.0)))
            p.job("step_in", market, label=False)
        if rng.random() < 0.75:
            p.job("watch_tv", market, duration=float(rng.uniform(0.5, 2.0)) * H)
        if r.drink == "tea" and rng.random() < 0.5:
            p.job("make_tea", market)
        p.job("go_to_bed", market, at=self.at(day, r.bed - 0.3))
        self.night(day, market)

    def holiday_day(self, day: int, trip: Trip) -> None:
        p, r, rng = self.p, self.r, self.rng
        leisure = "travel:leisure"
        times = self.shared.trips[trip]
        holiday = self.spec.holiday_home
        offset = float(rng.uniform(0, 300))
        if day == trip.depart:
            p.job("wake_up", self.market(day), at=self.at(day, r.wake + r.weekend_delay * 0.5))
            self.morning(self.market(day))
            p.job("pack", leisure, at=times["leave"] - 0.7 * H)
            p.job("leave_home", leisure, at=times["leave"] - 0.1 * H + offset)
            p.leave()
            p.arrive(holiday, times["leave"] + times["travel"] + offset)
            p.job("check_in_holiday", leisure)
        elif day == trip.back:
            p.job("wake_up", leisure, at=self.at(day, r.wake + r.weekend_delay))
            self.morning(leisure)
            p.job("pack", leisure)
            p.job("check_out_holiday", leisure, at=times["check_out"] + offset)
            p.leave()
            p.arrive(self.spec.home, times["check_out"] + times["travel"] + offset)
            p.job("return_home", leisure)
            self.evening(day, self.market(day), laundry=False)
            return
        else:
            p.job("wake_up", leisure, at=self.at(day, r.wake + r.weekend_delay))
            self.morning(leisure)
            p.job("leave_home", leisure, at=p.cursor + float(rng.uniform(0.5, 2.0)) * H)
            p.leave()
            p.arrive(holiday, p.cursor + float(rng.uniform(3.0, 7.0)) * H)
            p.job("return_home", leisure)
        if rng.random() < max(r.cook_p, 0.5):
            p.job("cook_dinner", leisure, at=self.at(day, r.dinner - 0.8))
        p.job("eat", leisure, at=self.at(day, r.dinner), duration=r.eat_min * 60 * 1.3)
        if rng.random() < r.tv_p:
            p.job("watch_tv", leisure, duration=r.tv_hours * H * float(rng.uniform(0.4, 1.0)))
        p.job("go_to_bed", leisure, at=self.at(day, r.bed + 0.3))
        self.night(day, leisure)
