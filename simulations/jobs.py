"""Each job to be done as a small state machine of device effects.

A job is a sequence of ``Phase``s; each phase puts the resident in a room for a while (PIR
motion at an activity level) and may open a contact, run an appliance, press a button,
raise the bathroom humidity or tap a venue reader. Rooms and devices are named generically
(``bedroom``, ``front_door``) and resolved against the place the job happens in, so one
template serves a home, a hotel room and a holiday home.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["MOTION_RATE", "TEMPLATES", "TEMPLATE_JOB", "Phase"]

# PIR-visible movements per second for each activity level.
MOTION_RATE: dict[str, float] = {
    "active": 1 / 20, "calm": 1 / 75, "still": 1 / 260, "idle": 1 / 400, "sleep": 1 / 1500, "none": 0.0,
}


class Phase(NamedTuple):
    room: str
    lo: float  # duration range, seconds (scaled by the resident's speed)
    hi: float
    motion: str = "active"
    appliance: str | None = None  # draws power for the phase
    cycle: tuple[float, float] | None = None  # … or for this long from the phase start
    contact: str | None = None  # opened and closed during the phase
    opens: int = 1
    button: str | None = None  # pressed at the phase start
    shower: bool = False
    checkin: str | None = None  # venue reader event at the phase start
    relay: bool = False  # switches the appliance's relay on at start, off at end


P = Phase
TEMPLATES: dict[str, tuple[Phase, ...]] = {
    "wake_up": (P("bedroom", 120, 600, "calm", button="single"), P("bedroom", 60, 240, "active")),
    "bed_to_toilet": (
        P("bedroom", 10, 40), P("hallway", 5, 20), P("bathroom", 90, 300, contact="bathroom_door"),
        P("hallway", 5, 20), P("bedroom", 20, 60, "calm"),
    ),
    "make_coffee": (P("kitchen", 20, 60), P("kitchen", 50, 140, appliance="coffee_machine"), P("kitchen", 10, 40)),
    "make_tea": (P("kitchen", 20, 60), P("kitchen", 120, 220, appliance="kettle"), P("kitchen", 60, 200)),
    "breakfast": (P("kitchen", 60, 240, contact="fridge"), P("kitchen", 480, 1400, "calm")),
    "shower": (P("bathroom", 40, 150, contact="bathroom_door"), P("bathroom", 300, 1100, shower=True),
               P("bathroom", 120, 420, contact="bathroom_door")),
    "leave_home": (P("hallway", 60, 300), P("hallway", 5, 25, contact="front_door")),
    "return_home": (P("hallway", 5, 25, contact="front_door"), P("hallway", 60, 240), P("kitchen", 30, 180)),
    "cook_dinner": (P("kitchen", 60, 300, contact="fridge"), P("kitchen", 900, 2600, appliance="stove"),
                    P("kitchen", 60, 300, contact="fridge")),
    "eat": (P("living", 900, 2400, "calm"),),
    "wash_dishes": (P("kitchen", 480, 1200, "active"),),
    "load_dishwasher": (P("kitchen", 180, 420, "active", cycle=(5400.0, 8400.0), appliance="dishwasher"),),
    "watch_tv": (P("living", 1800, 9000, "still", appliance="tv"),),
    "work_from_home": (P("office", 5400, 12600, "still", appliance="desk", relay=True),),
    "laundry": (P("bathroom", 180, 480, "active", cycle=(3600.0, 6600.0), appliance="washer"),),
    "exercise": (P("living", 1200, 2700, "active"),),
    "gym_exercise": (P("lockers", 120, 300, contact="locker"), P("floor", 2400, 4800, "active"),
                     P("lockers", 300, 900, contact="locker")),
    "go_to_bed": (P("bathroom", 120, 360), P("bedroom", 180, 900, "calm", button="double")),
    "host_guests": (P("hallway", 120, 600, contact="front_door", opens=3), P("living", 1800, 4800, "active"),
                    P("kitchen", 120, 600, contact="fridge", opens=2)),
    "check_in_hotel": (P("lobby", 120, 600, "none", checkin="arrival"), P("room", 60, 240, contact="room_door"),
                       P("room", 300, 900)),
    "check_out_hotel": (P("room", 60, 240, contact="room_door"), P("lobby", 120, 480, "none", checkin="departure")),
    "check_in_holiday": (P("hallway", 30, 120, contact="front_door"), P("living", 300, 900),
                         P("kitchen", 120, 600, contact="fridge")),
    "check_out_holiday": (P("kitchen", 120, 400), P("hallway", 60, 180, contact="front_door")),
    "check_in_gym": (P("entrance", 20, 90, "none", checkin="entry"),),
    "check_out_gym": (P("entrance", 20, 90, "none", checkin="exit"),),
    "pack": (P("bedroom", 600, 1800, "active"),),
    # unlabelled movements: leaving and coming back to a hotel room between meetings
    "step_out": (P("room", 30, 120, contact="room_door"),),
    "step_in": (P("room", 10, 60, contact="room_door"), P("room", 120, 600)),
}
# Templates named differently from their job (variants by place or appliance).
TEMPLATE_JOB: dict[str, str] = {
    "load_dishwasher": "wash_dishes",
    "gym_exercise": "exercise",
    "check_in_hotel": "check_in",
    "check_out_hotel": "check_out",
    "check_in_holiday": "check_in",
    "check_out_holiday": "check_out",
    "check_in_gym": "check_in",
    "check_out_gym": "check_out",
}
