"""Event handling: recorded ansible-runner event streams (tests/data/runner_events,
re-recorded with record.py there) fed through RunTracker and Progress."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from kubelab.events import RunTracker, clean, failure_message
from kubelab.runner import Progress, replay

pytestmark = pytest.mark.unit

EVENTS = Path(__file__).resolve().parent.parent / "data" / "runner_events"


def load(name: str) -> list[dict]:
    return json.loads((EVENTS / f"{name}.events.json").read_text())


def counts_of(tracker: RunTracker, host: str) -> tuple:
    c = tracker.counts[host]
    return (c.ok, c.changed, c.failed, c.unreachable, c.skipped, c.rescued, c.ignored)


def test_converged_run_counts_match_the_recap():
    tracker = replay(load("converged"))
    assert tracker.stats_seen
    assert tracker.converged
    # cp1: 3 ok (1 changed), 2 skipped.
    assert counts_of(tracker, "cp1") == (3, 1, 0, 0, 2, 0, 0)
    # w1: an ignored failure and a rescued one; neither counts as failed.
    assert counts_of(tracker, "w1") == (4, 1, 0, 0, 1, 1, 1)
    assert tracker.failures == []
    assert tracker.failed_hosts == set()


def test_failed_run_names_host_task_and_reason():
    tracker = replay(load("failed"))
    assert not tracker.converged
    assert counts_of(tracker, "cp1")[:4] == (2, 1, 0, 0)
    assert tracker.counts["w1"].failed == 1
    assert tracker.counts["w2"].unreachable == 1
    by_host = {f.host: f for f in tracker.failures}
    assert set(by_host) == {"w1", "w2"}
    w1 = by_host["w1"]
    assert (w1.task, w1.play, w1.unreachable) == ("Install CRI-O", "Stage 2 - nodes", False)
    assert w1.sentence() == (
        "host w1: task 'Install CRI-O' (Stage 2 - nodes) failed: "
        "cri-o 1.35.0 is not available from the repository"
    )
    w2 = by_host["w2"]
    assert w2.unreachable and w2.task == "Check the inventory"
    assert "was unreachable" in w2.sentence() and "Connection refused" in w2.sentence()


def test_rescued_failure_is_reported_live_but_not_at_the_end():
    events = load("converged")
    stats_at = next(i for i, e in enumerate(events) if e["event"] == "playbook_on_stats")
    tracker = replay(events[:stats_at])
    assert [f.task for f in tracker.failures] == ["Fails once"]  # what the operator saw
    tracker.handle(events[stats_at])
    assert tracker.failures == [] and tracker.converged


def test_stream_cut_before_the_recap_is_not_converged():
    """A cancelled run ends without playbook_on_stats: counts come from the
    host events and the run never counts as converged."""
    events = [e for e in load("converged") if e["event"] != "playbook_on_stats"]
    tracker = replay(events)
    assert not tracker.stats_seen
    assert not tracker.converged
    assert tracker.counts["cp1"].ok == 3 and tracker.counts["cp1"].changed == 1
    assert tracker.counts["w1"].ignored == 1


def test_progress_line_tracks_play_task_and_hosts():
    ticks = iter([100.0, 165.0])
    events = load("failed")
    cut = next(
        i for i, e in enumerate(events)
        if e["event"] == "runner_on_failed"
    )
    tracker = replay(events[: cut + 1], clock=lambda: next(ticks))
    line = tracker.progress_line()
    assert line == "[01:05] Stage 2 - nodes | Install CRI-O | 2/2 hosts done | 2 failed"


def test_progress_without_terminal_prints_plays_tasks_and_failures():
    out = io.StringIO()
    replay(load("failed"), progress=Progress(out, interactive=False))
    lines = out.getvalue().splitlines()
    assert any(line.endswith("Stage 1 - preflight") for line in lines)
    assert any(line.endswith("Stage 2 - nodes | Install CRI-O | 1 failed") for line in lines)
    failed = [line for line in lines if "FAILED" in line]
    assert len(failed) == 2
    assert "host w2: task 'Check the inventory'" in failed[0]
    assert "host w1: task 'Install CRI-O'" in failed[1]
    assert "\x1b" not in out.getvalue()


def test_progress_on_a_terminal_rewrites_one_line():
    out = io.StringIO()
    replay(load("converged")[:8], progress=Progress(out, interactive=True))
    text = out.getvalue()
    assert "\n" not in text
    assert text.count("\r") >= 3
    assert "Stage 1 - preflight | Check the inventory" in text


def test_failure_message_prefers_msg_and_cleans_colour():
    assert failure_message({"msg": "\x1b[0;31mbad\x1b[0m\r\nthing"}) == "bad thing"
    assert failure_message({"stderr": "e" * 400}).endswith("...")
    assert failure_message({"rc": 1}) == ""
    assert failure_message(None) == ""
    assert clean("a\n  b") == "a b"
