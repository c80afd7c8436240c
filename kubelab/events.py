"""Follow ansible-runner events: progress while a playbook runs, a per-host
summary at the end, and the failures that explain a bad exit.

What the progress may claim. ansible-playbook announces every task before
it evaluates the task's conditions (``playbook_on_task_start`` and one
``runner_on_start`` per host come first, ``runner_on_skipped`` follows), so
a task that started did not necessarily run. kubelab therefore names a task
as run only once a host reported a result other than "skipped" for it, or
once a host has been busy with it for ``RUNNING_AFTER`` seconds (deciding
to skip takes a fraction of a second); a task skipped on every host is never
named, only counted per stage. Times come from the events' own ``created``
stamps where present (so a recorded stream replays with its real times)."""

from __future__ import annotations

import datetime
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

# Host result events that finish one task on one host.
_DONE_EVENTS = {"runner_on_ok", "runner_on_skipped"}
_FAILED_EVENTS = {"runner_on_failed", "runner_on_unreachable", "runner_on_async_failed"}
_TASK_START = {"playbook_on_task_start": False, "playbook_on_handler_task_start": True}

# Tasks that include other tasks, load variables or steer the play: never
# listed (the tasks they include are).
_STRUCTURAL = {"include_tasks", "include_role", "meta", "include_vars"}

# A host busy with a task this long is running it: a skip takes ~0.1 s (up to
# a second or so for many hosts on a loaded controller).
RUNNING_AFTER = 3.0

# Result of one task on one host.
OK, CHANGED, SKIPPED, FAILED, IGNORED, UNREACHABLE = "ok", "changed", "skipped", "failed", "ignored", "unreachable"


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


def _event_time(event: dict) -> float | None:
    """The event's own ``created`` stamp in seconds, None when absent."""
    created = event.get("created")
    if not created:
        return None
    try:
        return datetime.datetime.fromisoformat(str(created)).timestamp()
    except ValueError:
        return None


def duration_text(value: float) -> str:
    """``4.2 s``, ``42 s``, ``3 min 05 s``."""
    if value < 10:
        return f"{value:.1f} s"
    if value < 60:
        return f"{value:.0f} s"
    minutes, seconds = divmod(int(round(value)), 60)
    return f"{minutes} min {seconds:02d} s"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


@dataclass
class TaskRun:
    """One task of a play as the hosts reported it."""

    name: str
    play: str
    started: float
    handler: bool = False
    structural: bool = False  # include_tasks, include_role, meta: not listed
    ended: float | None = None
    hosts: set[str] = field(default_factory=set)  # hosts it was started on
    results: dict[str, str] = field(default_factory=dict)  # host -> OK, CHANGED, SKIPPED, ...

    @property
    def label(self) -> str:
        return f"{self.name} (handler)" if self.handler else self.name

    @property
    def pending(self) -> set[str]:
        return self.hosts - set(self.results)

    @property
    def ran_on(self) -> list[str]:
        """Hosts that ran it (any result but skipped)."""
        return sorted(h for h, r in self.results.items() if r != SKIPPED)

    @property
    def ran(self) -> bool:
        return bool(self.ran_on)

    @property
    def skipped_everywhere(self) -> bool:
        """Finished on every host it started on, skipped on each."""
        return bool(self.results) and not self.pending and not self.ran

    def running(self, now: float) -> bool:
        """Some host is still on it and has been for RUNNING_AFTER seconds."""
        return bool(self.pending) and now - self.started >= RUNNING_AFTER

    def nameable(self, now: float) -> bool:
        """Whether progress may name it: it ran somewhere or is running."""
        return self.ran or self.running(now)

    def summary(self) -> str:
        """``2 changed, 1 skipped`` - how the hosts that finished it ended."""
        order = (CHANGED, OK, FAILED, IGNORED, UNREACHABLE, SKIPPED)
        words = {CHANGED: "changed", OK: "ok", FAILED: "failed", IGNORED: "failed (ignored)",
                 UNREACHABLE: "unreachable", SKIPPED: "skipped"}
        counts = {key: 0 for key in order}
        for result in self.results.values():
            counts[result] += 1
        return ", ".join(f"{counts[key]} {words[key]}" for key in order if counts[key])


@dataclass
class StageRun:
    """One play (a stage of site.yml): its hosts, tasks and time."""

    name: str
    started: float
    ended: float | None = None
    hosts: set[str] = field(default_factory=set)
    failed: set[str] = field(default_factory=set)  # failed or unreachable, not recovered in this play
    tasks: list[TaskRun] = field(default_factory=list)

    @property
    def done(self) -> set[str]:
        return self.hosts - self.failed

    def elapsed(self, now: float) -> float:
        return (self.ended if self.ended is not None else now) - self.started

    @property
    def ran_tasks(self) -> list[TaskRun]:
        return [t for t in self.tasks if t.ran and not t.structural]

    @property
    def skipped_tasks(self) -> list[TaskRun]:
        return [t for t in self.tasks if t.skipped_everywhere and not t.structural]

    def summary(self, now: float) -> str:
        """``Stage 2 - nodes: done in 42 s, 3/3 hosts done; 12 tasks ran, 9 skipped on every host (not listed)``."""
        state = "done" if self.ended is not None else "stopped"
        text = f"{self.name}: {state} in {duration_text(self.elapsed(now))}, {len(self.done)}/{len(self.hosts)} hosts done"
        if self.failed:
            text += f" ({', '.join(sorted(self.failed))} failed or unreachable)"
        text += f"; {_plural(len(self.ran_tasks), 'task')} ran"
        skipped = len(self.skipped_tasks)
        if skipped:
            text += f", {skipped} skipped on every host (not listed)"
        return text


@dataclass
class RunTracker:
    """Fed every ansible-runner event in order; knows where the run is."""

    clock: Callable[[], float] = time.time
    play: str = ""
    task: str = ""
    failed_hosts: set[str] = field(default_factory=set)
    failures: list[Failure] = field(default_factory=list)
    counts: dict[str, HostCounts] = field(default_factory=dict)
    stats_seen: bool = False
    stages: list[StageRun] = field(default_factory=list)
    changes: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # host -> [(stage, task)]
    started: float | None = None
    _offset: float | None = None  # event time minus clock time, from the first stamped event
    _last: float = 0.0

    def __post_init__(self) -> None:
        self.started = self.clock()
        self._last = self.started

    # -- time: the events' stamps when they have them, the clock otherwise
    def now(self) -> float:
        live = self.clock() + (self._offset or 0.0)
        return max(live, self._last)

    def _stamp(self, event: dict) -> float:
        stamp = _event_time(event)
        if stamp is None:
            stamp = self.now()
        elif self._offset is None:
            # the first stamped event: the run's times are the events' from now on
            self._offset = stamp - self.clock()
            self.started = stamp
            self._last = stamp
        self._last = max(self._last, stamp)
        return stamp

    @property
    def elapsed(self) -> float:
        return self.now() - (self.started or 0.0)

    # -- where the run is
    @property
    def stage(self) -> StageRun | None:
        return self.stages[-1] if self.stages else None

    @property
    def current(self) -> TaskRun | None:
        stage = self.stage
        return stage.tasks[-1] if stage and stage.tasks else None

    @property
    def tasks(self) -> list[TaskRun]:
        return [t for s in self.stages for t in s.tasks]

    def _host(self, name: str) -> HostCounts:
        return self.counts.setdefault(name, HostCounts())

    def feed(self, events: Iterable[dict]) -> None:
        for event in events:
            self.handle(event)

    def _close_task(self, when: float) -> None:
        task = self.current
        if task is not None and task.ended is None:
            task.ended = when

    def _close_stage(self, when: float) -> None:
        self._close_task(when)
        stage = self.stage
        if stage is not None and stage.ended is None:
            stage.ended = when

    def _result(self, host: str, result: str) -> TaskRun | None:
        stage, task = self.stage, self.current
        if stage is None:
            return None
        stage.hosts.add(host)
        if result in (FAILED, UNREACHABLE):
            stage.failed.add(host)
        elif result != IGNORED:
            stage.failed.discard(host)  # it goes on: rescued, or unreachable ignored earlier
        if task is not None:
            task.hosts.add(host)
            task.results[host] = result
            if result == CHANGED:
                self.changes.setdefault(host, []).append((stage.name, task.label))
        return task

    def handle(self, event: dict) -> str | None:
        """Update the state from one event. Returns the kind of change that a
        progress display cares about: "play", "task", "host", "failure",
        "stats" or None."""
        kind = event.get("event", "")
        data = event.get("event_data") or {}
        host = data.get("host") or ""
        when = self._stamp(event) if kind != "verbose" else self.now()
        if kind == "playbook_on_play_start":
            self._close_stage(when)
            self.play = data.get("play") or data.get("name") or ""
            self.task = ""
            self.stages.append(StageRun(name=self.play, started=when))
            return "play"
        if kind in _TASK_START:
            self._close_task(when)
            self.task = data.get("task") or data.get("name") or ""
            if self.stage is None:
                self.stages.append(StageRun(name=self.play, started=when))
            action = str(data.get("resolved_action") or data.get("task_action") or "")
            self.stage.tasks.append(TaskRun(name=self.task, play=self.play, started=when, handler=_TASK_START[kind],
                                            structural=action.rsplit(".", 1)[-1] in _STRUCTURAL))
            return "task"
        if kind == "runner_on_start" and host:
            self._host(host)
            if self.stage is not None:
                self.stage.hosts.add(host)
            if self.current is not None:
                self.current.hosts.add(host)
            return "host"
        if kind in _DONE_EVENTS and host:
            counts = self._host(host)
            changed = bool((data.get("res") or {}).get("changed"))
            if kind == "runner_on_skipped":
                result = SKIPPED
            else:
                result = CHANGED if changed else OK
            if not self.stats_seen:
                if result == SKIPPED:
                    counts.skipped += 1
                else:
                    counts.ok += 1
                    if changed:
                        counts.changed += 1
            self._result(host, result)
            return "host"
        if kind in _FAILED_EVENTS and host:
            counts = self._host(host)
            unreachable = kind == "runner_on_unreachable"
            if data.get("ignore_errors") and not unreachable:
                if not self.stats_seen:
                    counts.ignored += 1
                self._result(host, IGNORED)
                return "host"
            if not self.stats_seen:
                if unreachable:
                    counts.unreachable += 1
                else:
                    counts.failed += 1
            self._result(host, UNREACHABLE if unreachable else FAILED)
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
            self._close_stage(when)
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

    def clock_text(self) -> str:
        minutes, seconds = divmod(int(self.elapsed), 60)
        return f"[{minutes:02d}:{seconds:02d}]"

    def progress_line(self) -> str:
        """The live line: ``[mm:ss] stage (its time) | task | hosts done/total | N failed``.

        The task is named only when progress may name it (see the module's
        docstring); otherwise the line shows the stage and its hosts."""
        now = self.now()
        stage = self.stage
        parts = [self.clock_text()]
        if stage is None:
            parts.append(self.play or "starting")
        else:
            parts.append(f"{stage.name} {duration_text(stage.elapsed(now))}")
            task = self.current
            total = len(stage.hosts)
            if task is not None and task.nameable(now):
                done = len(task.results)
                parts.append(f"| {task.label} | {done}/{max(total, len(task.hosts))} hosts done")
            elif total:
                parts.append(f"| {_plural(total, 'host')}")
        if self.failed_hosts:
            parts.append(f"| {len(self.failed_hosts)} failed")
        return " ".join(parts)
