"""Work counted instead of timed: a figure the machine's speed and load do not change, so tests
can assert complexity (twice the input, about twice the steps) without asserting on time."""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from _typeshed import TraceFunction


def steps(call: Callable[[], object]) -> int:
    """Lines of Python run while ``call()`` runs, in every function it calls."""
    count = 0

    def line(frame: FrameType, event: str, arg: object) -> TraceFunction:
        nonlocal count
        if event == "line":
            count += 1
        return line

    previous = sys.gettrace()
    sys.settrace(lambda frame, event, arg: line)
    try:
        call()
    finally:
        sys.settrace(previous)
    return count
