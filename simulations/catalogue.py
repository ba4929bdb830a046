"""The simulator's closed sets: jobs to be done, markets and edge roles.

Jobs are labels carried by data (DESIGN.md, "Jobs"); this is the simulated household's
catalogue, written into every simulated dataset's ``meta.json`` and never sent on the wire.
"""

from __future__ import annotations

from typing import Literal

__all__ = ["EDGE_ROLES", "JOBS", "MARKETS", "EdgeRole", "Market"]

JOBS: tuple[str, ...] = (
    "wake_up",
    "make_coffee",
    "make_tea",
    "breakfast",
    "shower",
    "leave_home",
    "return_home",
    "cook_dinner",
    "eat",
    "wash_dishes",
    "watch_tv",
    "work_from_home",
    "laundry",
    "exercise",
    "go_to_bed",
    "bed_to_toilet",
    "host_guests",
    "check_in",
    "check_out",
    "pack",
)

Market = Literal["home:weekday", "home:weekend", "travel:business", "travel:leisure", "venue:gym", "hosting"]
MARKETS: tuple[str, ...] = (
    "home:weekday",
    "home:weekend",
    "travel:business",
    "travel:leisure",
    "venue:gym",
    "hosting",
)

EdgeRole = Literal["home", "hotel", "holiday_home", "gym"]
EDGE_ROLES: tuple[str, ...] = ("home", "hotel", "holiday_home", "gym")
