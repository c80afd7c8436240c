"""Event handling: recorded ansible-runner event streams (tests/data/runner_events,
re-recorded with record.py there) fed through RunTracker and Progress."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from kubelab.events import RUNNING_AFTER, RunTracker, clean, failure_message
from kubelab.report import render_changes
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


def test_progress_line_tracks_stage_task_and_hosts():
    """The live line: run time and stage time from the events' own stamps,
    the task that is running and its hosts done out of the stage's."""
    events = load("failed")
    cut = next(i for i, e in enumerate(events) if e["event"] == "runner_on_failed")
    tracker = replay(events[: cut + 1])
    line = tracker.progress_line()
    assert line.startswith("[00:03] Stage 2 - nodes 0.2 s | Install CRI-O | 2/2 hosts done")
    assert line.endswith("| 2 failed")


def test_progress_line_does_not_name_a_task_that_is_being_skipped():
    """Started on every host but no result yet, a split second in: the task
    may still be skipped everywhere, so the live line names only the stage."""
    events = load("first_converge")
    cut = next(i for i, e in enumerate(events)
               if e["event"] == "runner_on_start" and e["event_data"]["task"] == "Restore the previous drop-in"
               and e["event_data"]["host"] == "w1")
    tracker = replay(events[: cut + 1])  # up to the task's runner_on_start on both hosts
    assert tracker.current.name == "Restore the previous drop-in" and tracker.current.pending == {"cp1", "w1"}
    line = tracker.progress_line()
    assert "Restore" not in line and line.endswith("Stage 2 - nodes 1.6 s | 2 hosts")


def test_progress_line_names_a_task_a_host_has_been_busy_with():
    """A host on a task for RUNNING_AFTER seconds runs it (a skip takes a
    fraction of a second): the task is named before any result."""
    now = [0.0]
    tracker = RunTracker(clock=lambda: now[0])
    tracker.feed([
        {"event": "playbook_on_play_start", "event_data": {"play": "Stage 3 - control plane"}},
        {"event": "playbook_on_task_start", "event_data": {"task": "Run kubeadm init"}},
        {"event": "runner_on_start", "event_data": {"host": "cp1", "task": "Run kubeadm init"}},
    ])
    now[0] = RUNNING_AFTER / 2
    assert "kubeadm" not in tracker.progress_line()
    now[0] = RUNNING_AFTER + 0.1
    assert tracker.progress_line() == (f"[00:{int(RUNNING_AFTER):02d}] Stage 3 - control plane {RUNNING_AFTER + 0.1:.1f} s"
                                       " | Run kubeadm init | 0/1 hosts done")


def plain_progress(name: str) -> list[str]:
    out = io.StringIO()
    replay(load(name), progress=Progress(out, interactive=False))
    assert "\x1b" not in out.getvalue() and "\r" not in out.getvalue()
    return out.getvalue().splitlines()


SKIPPED_ON_EVERY_HOST = ["Read crio's error", "Restore the previous drop-in",
                         "Start crio with the previous configuration", "Fail with crio's error",
                         "Fail when a later drop-in overrides default_capabilities",
                         "Reset a half-initialised control plane"]


def test_first_converge_progress_names_only_what_ran():
    """Issue 16: a first converge showed the rollback tasks it skipped
    ("Restore the previous drop-in", "Fail with crio's error") as if they ran."""
    lines = plain_progress("first_converge")
    text = "\n".join(lines)
    for task in SKIPPED_ON_EVERY_HOST:
        assert task not in text, task
    assert "Restart crio now if its package" not in text  # flush_handlers: no host result
    assert lines == [
        "[00:00] Stage 2 - nodes: started",
        "[00:00]   Read the CRI-O package, repository and unit state: 2 ok (0.7 s)",
        "[00:01]   Write the default capabilities drop-in: 2 changed (0.4 s)",
        "[00:01]   Restart crio: 2 changed (0.4 s)",
        "[00:02]   Enable and start crio: 1 changed, 1 skipped (0.4 s)",
        "[00:02] Stage 2 - nodes: done in 2.1 s, 2/2 hosts done; 4 tasks ran, 5 skipped on every host (not listed)",
        "[00:02] Stage 3 - control plane: started",
        "[00:02]   Initialise the control plane with kubeadm: 1 changed (0.3 s)",
        "[00:02] Stage 3 - control plane: done in 0.3 s, 1/1 hosts done; 1 task ran, "
        "1 skipped on every host (not listed)",
    ]


def test_first_converge_on_a_terminal_never_shows_a_skipped_task():
    out = io.StringIO()
    replay(load("first_converge"), progress=Progress(out, interactive=True))
    text = out.getvalue()
    for task in SKIPPED_ON_EVERY_HOST:
        assert task not in text, task
    assert "| Write the default capabilities drop-in | 2/2 hosts done" in text
    # the stage lines stay; the live line is rewritten in place
    kept = [line.split("\r")[-1] for line in text.split("\n") if line.split("\r")[-1]]
    assert kept == ["[00:00] Stage 2 - nodes: started",
                    "[00:02] Stage 2 - nodes: done in 2.1 s, 2/2 hosts done; 4 tasks ran, "
                    "5 skipped on every host (not listed)",
                    "[00:02] Stage 3 - control plane: started",
                    "[00:02] Stage 3 - control plane: done in 0.3 s, 1/1 hosts done; 1 task ran, "
                    "1 skipped on every host (not listed)"]


def test_the_run_ends_with_what_changed_per_host():
    tracker = replay(load("first_converge"))
    assert tracker.changes == {
        "cp1": [("Stage 2 - nodes", "Write the default capabilities drop-in"), ("Stage 2 - nodes", "Restart crio"),
                ("Stage 3 - control plane", "Initialise the control plane with kubeadm")],
        "w1": [("Stage 2 - nodes", "Write the default capabilities drop-in"), ("Stage 2 - nodes", "Restart crio"),
               ("Stage 2 - nodes", "Enable and start crio")],
    }
    assert render_changes(tracker.changes, tracker.counts).splitlines() == [
        "What changed:",
        "  cp1: 3 tasks changed",
        "    Stage 2 - nodes: Write the default capabilities drop-in; Restart crio",
        "    Stage 3 - control plane: Initialise the control plane with kubeadm",
        "  w1: 3 tasks changed",
        "    Stage 2 - nodes: Write the default capabilities drop-in; Restart crio; Enable and start crio",
    ]
    failed = replay(load("failed"))
    assert render_changes(failed.changes, failed.counts).splitlines() == [
        "What changed:", "  cp1: 1 task changed", "    Stage 2 - nodes: Write a drop-in",
        "  w1: nothing", "  w2: nothing"]


def test_progress_without_terminal_prints_stages_tasks_and_failures():
    lines = plain_progress("failed")
    assert lines[0] == "[00:00] Stage 1 - preflight: started"
    assert lines[-1] == "[00:05] Stage 2 - nodes: done in 2.5 s, 1/2 hosts done (w1 failed or unreachable); 2 tasks ran"
    assert "[00:03] Stage 1 - preflight: done in 3.2 s, 2/3 hosts done (w2 failed or unreachable); 1 task ran" in lines
    assert any(line.endswith("  Install CRI-O: 1 failed, 1 skipped (0.2 s)") for line in lines)
    failed = [line for line in lines if "FAILED" in line]
    assert len(failed) == 2
    assert "host w2: task 'Check the inventory'" in failed[0]
    assert "host w1: task 'Install CRI-O'" in failed[1]


def test_a_rescued_host_finishes_its_stage_and_an_ignored_failure_is_said_so():
    lines = plain_progress("converged")
    assert any(line.endswith("Tolerated failure: 1 failed (ignored), 1 skipped (1.7 s)") for line in lines)
    assert lines[-1].endswith("Stage 2 - nodes: done in 5.1 s, 2/2 hosts done; 4 tasks ran")


def test_a_task_still_running_is_said_to_run_with_its_hosts():
    now = [0.0]
    tracker = RunTracker(clock=lambda: now[0])
    out = io.StringIO()
    progress = Progress(out, interactive=False, still_running_after=10, still_running_every=60)
    for event in [{"event": "playbook_on_play_start", "event_data": {"play": "Stage 2 - nodes"}},
                  {"event": "playbook_on_task_start", "event_data": {"task": "Install CRI-O"}},
                  {"event": "runner_on_start", "event_data": {"host": "w1"}},
                  {"event": "runner_on_start", "event_data": {"host": "w2"}},
                  {"event": "runner_on_ok", "event_data": {"host": "w1", "res": {"changed": True}}}]:
        progress.update(tracker, tracker.handle(event))
    for second in (5, 11, 30, 72):
        now[0] = second
        progress.update(tracker, "tick")
    assert out.getvalue().splitlines() == [
        "[00:00] Stage 2 - nodes: started",
        "[00:11]   Install CRI-O: running for 11 s, 1/2 hosts done",
        "[01:12]   Install CRI-O: running for 1 min 12 s, 1/2 hosts done",
    ]


def test_progress_on_a_terminal_rewrites_one_line():
    out = io.StringIO()
    replay(load("converged")[:8], progress=Progress(out, interactive=True))
    text = out.getvalue()
    assert text.count("\r") >= 3
    assert "[00:02] Stage 1 - preflight 2.7 s | Check the inventory | 2/2 hosts done" in text
    assert text.split("\n") == ["[00:00] Stage 1 - preflight: started", text.split("\n")[1]]


def test_failure_message_prefers_msg_and_cleans_colour():
    assert failure_message({"msg": "\x1b[0;31mbad\x1b[0m\r\nthing"}) == "bad thing"
    assert failure_message({"stderr": "e" * 400}).endswith("...")
    assert failure_message({"rc": 1}) == ""
    assert failure_message(None) == ""
    assert clean("a\n  b") == "a b"
