"""Acme smart kettle: a third-party Genius device plugin in one declaration.

The kettle publishes JSON on ``acme/<kettle-id>/kettle``::

    {"heating": true, "watts": 2150, "water_c": 87.5, "fw": "1.4.2"}

``KETTLE`` says where each capability sits in that JSON; the ``genius.devices`` entry point in
``pyproject.toml`` registers it, and every edge then reads kettles without new code. Mistakes
(an unknown capability, a topic without a ``+`` for the device id) fail at import.
"""

from devices import Topic, define, power, switch, temperature

__all__ = ["KETTLE"]

KETTLE = define(
    vendor="Acme",
    model="K-1",
    description="Acme smart kettle",
    match=Topic("acme/+/kettle"),
    exposes=(
        switch(path="heating"),
        power(path="watts"),
        temperature(path="water_c"),
    ),
)
