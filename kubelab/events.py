"""Follow ansible-runner events: progress while a playbook runs, a per-host
summary at the end, and the failures that explain a bad exit."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

# Host result events that finish one task on one host.
_DONE_EVENTS = {"runner_on_ok", "runner_on_skipped"}
_FAILED_EVENTS = {"runner_on_failed", "runner_on_unreachable", "runner_on_async_failed"}


def clean(text: object) -> str:
    """Text without terminal colours, on one line, trimmed."""
    flat = _ANSI.sub("", str(text)).replace("\r", " ").replace("\n", " ")
    return " ".join(flat.split())


@dataclass
class HostCounts:
    """One host's line of the play recap."""

    ok: int = 0
    changed: int = 0
    failed: int = 0
    unreachable: int = 0
    skipped: int = 0
    rescued: int = 0
    ignored: int = 0

    @property
    def converged(self) -> bool:
        return self.failed == 0 and self.unreachable == 0


@dataclass
class Failure:
    """A task that failed on a host (or a host that could not be reached)."""

    host: str
    task: str
    play: str
    message: str
    unreachable: bool = False

    def sentence(self) -> str:
        what = "was unreachable" if self.unreachable else "failed"
        text = f"host {self.host}: task '{self.task}' ({self.play}) {what}"
        return f"{text}: {self.message}" if self.message else text


def failure_message(res: object) -> str:
    """The most useful one-line reason from a task result."""
    if not isinstance(res, dict):
        return ""
    for key in ("msg", "reason", "stderr", "stdout", "module_stderr"):
        value = res.get(key)
        if value:
            text = clean(value)
            return text if len(text) <= 300 else text[:297] + "..."
    return ""


@dataclass
class RunTracker:
    """Fed every ansible-runner event in order; knows where the run is."""

    clock: Callable[[], float] = time.monotonic
    play: str = ""
    task: str = ""
    task_hosts: set[str] = field(default_factory=set)
    task_done: set[str] = field(default_factory=set)
    failed_hosts: set[str] = field(default_factory=set)
    failures: list[Failure] = field(default_factory=list)
    counts: dict[str, HostCounts] = field(default_factory=dict)
    stats_seen: bool = False
    started: float | None = None

    def __post_init__(self) -> None:
        self.started = self.clock()

    @property
    def elapsed(self) -> float:
        return self.clock() - (self.started or 0.0)

    def _host(self, name: str) -> HostCounts:
        return self.counts.setdefault(name, HostCounts())

    def feed(self, events: Iterable[dict]) -> None:
        for event in events:
            self.handle(event)

    def handle(self, event: dict) -> str | None:
        """Update the state from one event. Returns the kind of change that a
        progress display cares about: "play", "task", "host", "failure",
        "stats" or None."""
        kind = event.get("event", "")
        data = event.get("event_data") or {}
        host = data.get("host") or ""
        if kind == "playbook_on_play_start":
            self.play = data.get("play") or data.get("name") or ""
            self.task = ""
            return "play"
        if kind == "playbook_on_task_start":
            self.task = data.get("task") or data.get("name") or ""
            self.task_hosts = set()
            self.task_done = set()
            return "task"
        if kind == "runner_on_start" and host:
            self.task_hosts.add(host)
            self._host(host)
            return "host"
        if kind in _DONE_EVENTS and host:
            self.task_hosts.add(host)
            self.task_done.add(host)
            counts = self._host(host)
            if not self.stats_seen:
                if kind == "runner_on_skipped":
                    counts.skipped += 1
                else:
                    counts.ok += 1
                    if (data.get("res") or {}).get("changed"):
                        counts.changed += 1
            return "host"
        if kind in _FAILED_EVENTS and host:
            self.task_hosts.add(host)
            self.task_done.add(host)
            counts = self._host(host)
            unreachable = kind == "runner_on_unreachable"
            if data.get("ignore_errors") and not unreachable:
                if not self.stats_seen:
                    counts.ignored += 1
                return "host"
            if not self.stats_seen:
                if unreachable:
                    counts.unreachable += 1
                else:
                    counts.failed += 1
            self.failed_hosts.add(host)
            self.failures.append(
                Failure(
                    host=host,
                    task=data.get("task") or self.task,
                    play=data.get("play") or self.play,
                    message=failure_message(data.get("res")),
                    unreachable=unreachable,
                )
            )
            return "failure"
        if kind == "playbook_on_stats":
            self._apply_stats(data)
            return "stats"
        return None

    def _apply_stats(self, data: dict) -> None:
        """The recap is authoritative: replace the counts seen so far.
        Several playbooks in one run (not kubelab's case) add up."""
        fields = {
            "ok": "ok",
            "changed": "changed",
            "failures": "failed",
            "dark": "unreachable",
            "skipped": "skipped",
            "rescued": "rescued",
            "ignored": "ignored",
        }
        if not self.stats_seen:
            self.counts = {}
            self.stats_seen = True
        hosts: set[str] = set((data.get("processed") or {}).keys())
        for key in fields:
            hosts.update((data.get(key) or {}).keys())
        for host in sorted(hosts):
            counts = self._host(host)
            for key, attr in fields.items():
                value = (data.get(key) or {}).get(host, 0)
                setattr(counts, attr, getattr(counts, attr) + int(value))
        # A failure that a rescue block handled is not a failure of the run.
        self.failures = [f for f in self.failures if not self._host(f.host).converged]
        self.failed_hosts = {f.host for f in self.failures}

    @property
    def converged(self) -> bool:
        """Every host finished without a failure and the run reached its recap."""
        return (
            self.stats_seen
            and bool(self.counts)
            and all(c.converged for c in self.counts.values())
        )

    def progress_line(self, counts: bool = True) -> str:
        """`[mm:ss] play | task | done/started hosts done | N failed`."""
        minutes, seconds = divmod(int(self.elapsed), 60)
        parts = [f"[{minutes:02d}:{seconds:02d}]", self.play or "starting"]
        if self.task:
            parts.append(f"| {self.task}")
            if counts and self.task_hosts:
                parts.append(f"| {len(self.task_done)}/{len(self.task_hosts)} hosts done")
        if self.failed_hosts:
            parts.append(f"| {len(self.failed_hosts)} failed")
        return " ".join(parts)
