"""Run one kubelab playbook through ansible-runner.

What this module guarantees:
- ansible-playbook comes from kubelab's own environment (``binary``), with the
  project's ansible.cfg and an allow-listed environment (see kubelab.project);
  ansible-runner's own additions that would override ansible.cfg (fact cache,
  host key checking) are removed.
- Extra variables never touch the disk: ansible-runner's env/ files are
  suppressed (``suppress_env_files``), and the values reach ansible-playbook as
  ``-e @FIFO``, a named pipe in a private directory that a thread writes the
  JSON into while ansible-playbook reads it. The command line that
  ansible-runner records in the run's ``command`` file holds only the pipe's
  name.
- Every run gets its own artifact directory ``<artifacts>/runs/<ident>``;
  only the newest ``keep`` runs are kept.
- Ctrl-C sends SIGINT to ansible-playbook, which stops its workers and their
  module processes; if it has not exited after a grace period (or on a
  second Ctrl-C) the cancel flag that ansible-runner polls is set and
  ansible-runner kills its process group. The run ends "canceled".
"""

from __future__ import annotations

import datetime
import json
import os
import queue
import shlex
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from kubelab.errors import KubelabError
from kubelab.events import RunTracker, duration_text
from kubelab.project import ansible_playbook, playbook_env

# Environment keys ansible-runner sets that kubelab keeps: they make the
# event stream work. Others it adds (ANSIBLE_CACHE_PLUGIN,
# ANSIBLE_HOST_KEY_CHECKING=False, ...) would override ansible.cfg.
RUNNER_ENV_KEYS = (
    "ANSIBLE_CALLBACK_PLUGINS",
    "ANSIBLE_STDOUT_CALLBACK",
    "ANSIBLE_RETRY_FILES_ENABLED",
    "AWX_ISOLATED_DATA_DIR",
    "RUNNER_OMIT_EVENTS",
    "RUNNER_ONLY_FAILED_EVENTS",
)
DEFAULT_KEEP_RUNS = 10


@dataclass
class RunRequest:
    """One ansible-playbook invocation."""

    playbook: Path
    label: str
    inventory: Path | None = None
    limit: str | None = None
    tags: str | None = None
    extravars: dict[str, object] = field(default_factory=dict)
    artifacts_dir: Path = Path("artifacts")
    keep_runs: int = DEFAULT_KEEP_RUNS


@dataclass
class RunResult:
    status: str  # successful, failed, canceled, timeout
    rc: int | None
    tracker: RunTracker
    run_dir: Path | None

    @property
    def canceled(self) -> bool:
        return self.status == "canceled"


class Runner(Protocol):
    def run(self, request: RunRequest, progress: Progress) -> RunResult: ...


def build_cmdline(request: RunRequest, extravars_file: Path | None = None) -> list[str]:
    """ansible-playbook's arguments, playbook last. Extra variables are
    passed as ``-e @extravars_file`` (never inline)."""
    args: list[str] = []
    if request.inventory is not None:
        args += ["-i", str(request.inventory)]
    if request.limit:
        args += ["--limit", request.limit]
    if request.tags:
        args += ["--tags", request.tags]
    if request.extravars:
        if extravars_file is None:
            raise ValueError("extra variables need a pipe to travel through")
        args += ["-e", f"@{extravars_file}"]
    args.append(str(request.playbook))
    return args


def run_ident(label: str, now: datetime.datetime | None = None) -> str:
    now = now or datetime.datetime.now(datetime.UTC)
    return f"{now.strftime('%Y%m%dT%H%M%S.%fZ')}-{label}"


class Progress:
    """Prints where the run is, naming only tasks that ran (see kubelab.events).

    Without a terminal (CI logs): a line when a stage starts, one per task
    that ran on some host once it finished (tasks skipped on every host are
    only counted), a line for a task still running after
    ``still_running_after`` seconds (then every ``still_running_every``), and
    one per stage at its end with its time and hosts done out of total.
    On a terminal: the stage lines, and one line rewritten in place with the
    current stage, task and hosts. Failures are printed as they happen."""

    def __init__(self, stream=None, interactive: bool | None = None,
                 still_running_after: float = 10.0, still_running_every: float = 60.0) -> None:
        self.stream = stream or sys.stdout
        self.interactive = (
            self.stream.isatty() if interactive is None else interactive
        )
        self.still_running_after = still_running_after
        self.still_running_every = still_running_every
        self._width = 0
        self._stages = 0  # stages whose start line was printed
        self._closed_stages = 0  # stages whose summary was printed
        self._tasks = 0  # tasks (over the whole run) whose end was handled
        self._still: dict[int, float] = {}  # id(task) -> when it was last said to be running

    def _say(self, tracker: RunTracker, text: str) -> None:
        self._clear()
        print(f"{tracker.clock_text()} {text}", file=self.stream, flush=True)

    def _report(self, tracker: RunTracker) -> None:
        """Print the lines for what started or ended since the last call."""
        tasks = tracker.tasks
        stages = tracker.stages
        now = tracker.now()
        index = 0
        for position, stage in enumerate(stages):
            if position >= self._stages:
                self._say(tracker, f"{stage.name}: started")
                self._stages = position + 1
            for task in stage.tasks:
                if index >= self._tasks and task.ended is not None:
                    if task.ran and not task.structural and not self.interactive:
                        self._say(tracker, f"  {task.label}: {task.summary()} ({duration_text(task.ended - task.started)})")
                    self._tasks = index + 1
                index += 1
            if stage.ended is not None and position >= self._closed_stages:
                self._say(tracker, stage.summary(now))
                self._closed_stages = position + 1
        task = tracker.current
        if task is None or task.ended is not None or not task.pending or self.interactive:
            return
        running_for = now - task.started
        last = self._still.get(id(task))
        due = self.still_running_after if last is None else (last + self.still_running_every)
        if running_for >= due:
            self._still[id(task)] = running_for
            hosts = len(task.hosts)
            self._say(tracker, f"  {task.label}: running for {duration_text(running_for)}, "
                               f"{len(task.results)}/{hosts} hosts done")

    def update(self, tracker: RunTracker, change: str | None) -> None:
        if change == "failure":
            self._clear()
            failure = tracker.failures[-1]
            print(f"  FAILED {failure.sentence()}", file=self.stream, flush=True)
        if change is not None:
            self._report(tracker)
        if self.interactive and change in ("play", "task", "host", "failure", "tick", "stats"):
            if change == "stats":
                return
            line = tracker.progress_line()
            columns = shutil.get_terminal_size((100, 24)).columns - 1
            if len(line) > columns:  # a wrapped line cannot be rewritten in place
                line = line[: max(10, columns - 3)] + "..."
            pad = max(0, self._width - len(line))
            self.stream.write("\r" + line + " " * pad)
            self.stream.flush()
            self._width = len(line)

    def _clear(self) -> None:
        if self.interactive and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self._width = 0

    def message(self, text: str) -> None:
        self._clear()
        print(text, file=self.stream, flush=True)

    def finish(self) -> None:
        self._clear()


class AnsibleRunner:
    """Runs a RunRequest with ansible-runner and follows its events."""

    def __init__(
        self,
        root: Path,
        environ: dict[str, str] | None = None,
        event_sink: Callable[[dict], None] | None = None,
    ) -> None:
        self.root = root
        self.environ = environ
        self.event_sink = event_sink  # sees every raw event (recording tests)
        self.grace_seconds = 20.0  # after Ctrl-C, before ansible-playbook is killed

    def _config(self, request: RunRequest, ident: str, extravars_file: Path | None):
        from ansible_runner.config.runner import RunnerConfig

        private = request.artifacts_dir / "runner"
        runs = request.artifacts_dir / "runs"
        for path in (request.artifacts_dir, private, runs):
            path.mkdir(parents=True, exist_ok=True)
        private.chmod(0o700)
        runs.chmod(0o700)
        env = playbook_env(self.root, self.environ)
        config = RunnerConfig(
            private_data_dir=str(private),
            artifact_dir=str(runs),
            ident=ident,
            binary=str(ansible_playbook()),
            cmdline=shlex.join(build_cmdline(request, extravars_file)),
            envvars=env,
            host_cwd=str(self.root),
            project_dir=str(self.root),
            rotate_artifacts=max(1, request.keep_runs),
            suppress_env_files=True,
            quiet=True,
        )
        config.prepare()
        config.env = {
            key: value
            for key, value in config.env.items()
            if key in env or key in RUNNER_ENV_KEYS
        }
        return config

    def run(self, request: RunRequest, progress: Progress) -> RunResult:
        ident = run_ident(request.label)
        with ExtravarsPipe(request.extravars) as pipe:
            config = self._config(request, ident, pipe.path)
            return self._run(config, progress)

    def _run(self, config, progress: Progress) -> RunResult:
        from ansible_runner.runner import Runner as _Runner

        tracker = RunTracker()
        events: queue.Queue[dict] = queue.Queue()
        cancel = threading.Event()
        playbook_pid: list[int] = []

        def on_event(event: dict) -> bool:
            if not playbook_pid and isinstance(event.get("pid"), int):
                playbook_pid.append(event["pid"])  # ansible-playbook's own pid
            if self.event_sink is not None:
                self.event_sink(event)
            events.put(event)
            return True

        runner = _Runner(
            config,
            event_handler=on_event,
            cancel_callback=cancel.is_set,
        )
        thread = threading.Thread(target=runner.run, name="kubelab-runner", daemon=True)
        thread.start()
        interrupted_at: float | None = None
        spawned: dict[int, str] = {}  # ansible-playbook's process tree at Ctrl-C
        while True:
            try:
                thread.join(0.25)
                _drain(events, tracker, progress)
                if not thread.is_alive():
                    break
                if interrupted_at is not None and not cancel.is_set():
                    if time.monotonic() - interrupted_at > self.grace_seconds:
                        progress.message("ansible-playbook did not stop in time: killing it.")
                        spawned.update(process_tree(playbook_pid[0]) if playbook_pid else {})
                        cancel.set()
                progress.update(tracker, "tick")
            except KeyboardInterrupt:
                if interrupted_at is None:
                    interrupted_at = time.monotonic()
                    pid = playbook_pid[0] if playbook_pid else None
                    spawned.update(process_tree(pid) if pid else {})
                    if _interrupt_playbook(pid):
                        progress.message(
                            "Interrupted: asking ansible-playbook to stop its tasks "
                            f"(Ctrl-C again to kill it now; killed anyway after {self.grace_seconds:.0f} s)..."
                        )
                    else:
                        progress.message("Interrupted: stopping ansible-playbook...")
                        cancel.set()
                else:
                    progress.message("Interrupted again: killing ansible-playbook.")
                    if playbook_pid:
                        spawned.update(process_tree(playbook_pid[0]))
                    cancel.set()
        if spawned:
            stopped = terminate_leftovers(spawned)
            if stopped:
                progress.message(f"Stopped {stopped} process(es) that ansible-playbook left behind on this machine.")
        _drain(events, tracker, progress)
        progress.finish()
        status = "canceled" if interrupted_at is not None else (runner.status or "failed")
        return RunResult(
            status=status,
            rc=runner.rc,
            tracker=tracker,
            run_dir=Path(config.artifact_dir),
        )


def _proc_stat(pid: int) -> tuple[int, str] | None:
    """(parent pid, start time) of a process, from /proc/PID/stat."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return int(fields[1]), fields[19]


def process_tree(pid: int) -> dict[int, str]:
    """Every live descendant of pid (not pid itself), with its start time so
    a recycled pid is never mistaken for it later."""
    parents: dict[int, list[int]] = {}
    starts: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        stat = _proc_stat(int(entry.name))
        if stat is None:
            continue
        parents.setdefault(stat[0], []).append(int(entry.name))
        starts[int(entry.name)] = stat[1]
    tree: dict[int, str] = {}
    todo = list(parents.get(pid, []))
    while todo:
        child = todo.pop()
        if child in tree or child not in starts:
            continue
        tree[child] = starts[child]
        todo.extend(parents.get(child, []))
    return tree


def terminate_leftovers(spawned: dict[int, str]) -> int:
    """SIGTERM the processes of a cancelled run that outlived ansible-playbook
    (module processes run in their own sessions, so killing ansible-playbook's
    process group misses them). Only the exact processes recorded, by pid and
    start time. Returns how many were signalled."""
    count = 0
    for pid, start in spawned.items():
        stat = _proc_stat(pid)
        if stat is None or stat[1] != start:
            continue
        try:
            os.kill(pid, signal.SIGTERM)
            count += 1
        except OSError:
            pass
    return count


def _interrupt_playbook(pid: int | None) -> bool:
    """SIGINT to ansible-playbook (as a terminal's Ctrl-C would): it stops its
    workers and their module processes itself. ansible-runner's own cancel
    kills the process group with SIGKILL, which orphans local module
    processes. Returns False when there is no ansible-playbook to signal."""
    if pid is None:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    if b"ansible-playbook" not in cmdline:
        return False
    try:
        os.kill(pid, signal.SIGINT)
    except OSError:
        return False
    return True


class ExtravarsPipe:
    """A named pipe that hands the extra variables to ansible-playbook once.

    The directory is private (0700) and removed on exit; the JSON only ever
    exists in this process's memory and the pipe's kernel buffer."""

    def __init__(self, extravars: dict[str, object]) -> None:
        self.extravars = extravars
        self.directory: Path | None = None
        self.path: Path | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> ExtravarsPipe:
        if not self.extravars:
            return self
        self.directory = Path(tempfile.mkdtemp(prefix="kubelab-vars-"))
        self.path = self.directory / "extravars.json"
        os.mkfifo(self.path, 0o600)
        payload = json.dumps(self.extravars, sort_keys=True).encode("utf-8")
        path = self.path

        def feed() -> None:
            try:
                with open(path, "wb") as pipe:  # blocks until the reader opens it
                    pipe.write(payload)
            except OSError:
                pass

        self._thread = threading.Thread(target=feed, name="kubelab-extravars", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        if self._thread is not None and self._thread.is_alive() and self.path is not None:
            # ansible-playbook never read the pipe (it failed early): open the
            # read end ourselves so the writer finishes.
            try:
                fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
                self._thread.join(2)
                os.close(fd)
            except OSError:
                pass
            self._thread.join(2)
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)


def _drain(events: queue.Queue[dict], tracker: RunTracker, progress: Progress) -> None:
    while True:
        try:
            event = events.get_nowait()
        except queue.Empty:
            return
        progress.update(tracker, tracker.handle(event))


def replay(events: list[dict], progress: Progress | None = None, clock: Callable[[], float] | None = None) -> RunTracker:
    """Feed recorded events through a tracker (and a progress display)."""
    tracker = RunTracker(clock=clock) if clock else RunTracker()
    for event in events:
        change = tracker.handle(event)
        if progress is not None:
            progress.update(tracker, change)
    return tracker


def require_file(path: Path, what: str) -> Path:
    if not path.exists():
        raise KubelabError(f"{what} {path} does not exist.")
    return path
