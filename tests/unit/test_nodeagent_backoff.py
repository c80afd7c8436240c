"""The node agent's back-off (client-go flowcontrol.Backoff as the kubelet builds it: 10 s doubling to 300 s)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

STANDINS = Path(__file__).resolve().parents[2] / "molecule" / "resources" / "standins"
sys.path.insert(0, str(STANDINS))
from nodeagent.agent import BackOff, go_duration  # noqa: E402


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.mark.unit
def test_backoff_doubles_to_the_maximum_and_expires():
    clock = Clock()
    backoff = BackOff(clock=clock)
    assert backoff.get("c") == 0 and not backoff.in_backoff_since("c", clock.now)
    seen = []
    for _ in range(7):
        backoff.next("c")
        seen.append(backoff.get("c"))
        clock.now += 1
    assert seen == [10, 20, 40, 80, 160, 300, 300]
    # a container that finished 299 s ago is still in a 300 s window, 301 s ago is not
    assert backoff.in_backoff_since("c", clock.now - 299)
    assert not backoff.in_backoff_since("c", clock.now - 301)
    # an entry not updated for more than twice the maximum starts over
    clock.now += 601
    assert not backoff.in_backoff_since_update("c")
    backoff.next("c")
    assert backoff.get("c") == 10
    assert backoff.in_backoff_since_update("c")
    clock.now += 10
    assert not backoff.in_backoff_since_update("c")


@pytest.mark.unit
def test_go_duration_strings():
    assert [go_duration(s) for s in (10, 20, 40, 80, 160, 300)] == ["10s", "20s", "40s", "1m20s", "2m40s", "5m0s"]
