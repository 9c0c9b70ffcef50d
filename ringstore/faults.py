"""Fault seams that tests switch on in real processes, through the environment.

``RINGSTORE_FAULTS`` is a comma-separated list of ``POINT:METHOD`` items:

- ``drop_reply:METHOD``: the metanode runs ``METHOD`` to the end (its transaction commits),
  then answers UNAVAILABLE, as if the reply had been lost on the wire or the metanode had died
  before sending it.
- ``fail_after:METHOD``: the gateway's call of ``METHOD`` on the metanode completes, and the
  gateway then treats it as failed (a deadline that expired a moment too early, a cancelled
  call).

Both leave the caller unable to know whether the operation happened: exactly the case the
write path must survive (docs/decisions.md, 15). Unset, every check is one lookup in an empty
set. Never set in production.
"""

from __future__ import annotations

import os

ENV = "RINGSTORE_FAULTS"
POINTS = ("drop_reply", "fail_after")


def parse(text: str) -> frozenset[tuple[str, str]]:
    """The (point, method) pairs of a ``RINGSTORE_FAULTS`` value; ValueError naming a bad item."""
    faults = set()
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        point, _, method = item.partition(":")
        if point not in POINTS or not method:
            raise ValueError(
                f"{ENV}: {item!r} is not POINT:METHOD with POINT one of {', '.join(POINTS)}"
            )
        faults.add((point, method))
    return frozenset(faults)


ACTIVE = parse(os.environ.get(ENV, ""))


def active(point: str, method: str) -> bool:
    return (point, method) in ACTIVE
