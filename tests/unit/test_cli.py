"""The kubelab command: argument parsing, what each command asks
ansible-runner to run, and how results become output and exit codes.

Runs are replayed from recorded ansible-runner events (tests/data/runner_events)
by FakeRunner, which can also drop a verification report where the verify
stage writes it (<kubelab_artifacts_dir>/report/)."""

from __future__ import annotations

import io
import json
import os
import shlex
import sys
from pathlib import Path

import pytest
import yaml

from kubelab import cli
from kubelab.project import PASSTHROUGH_ENV, playbook_env
from kubelab.runner import RunRequest, RunResult, build_cmdline, replay

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "tests" / "data" / "runner_events"

PASSING = [
    {"id": "http", "stage": "external", "source": "controller", "target": "192.0.2.11:80",
     "expected": "Welcome to nginx!", "observed": "Welcome to nginx!", "verdict": "pass"},
]
FAILING = PASSING + [
    {"id": "ping", "stage": "pod", "source": "busybox", "target": "10.244.1.5",
     "expected": "reply", "observed": "permission denied", "verdict": "fail"},
]


def events(name: str) -> list[dict]:
    return json.loads((EVENTS / f"{name}.events.json").read_text())


class FakeRunner:
    """Stands in for AnsibleRunner: records the requests and replays events."""

    def __init__(self, scenarios: list[tuple[str, list[dict] | None]] | None = None, canceled: bool = False):
        # One (events name, report or None) per expected run, in order.
        self.scenarios = list(scenarios or [("converged", PASSING)])
        self.canceled = canceled
        self.requests: list[RunRequest] = []

    def run(self, request: RunRequest, progress) -> RunResult:
        self.requests.append(request)
        name, results = self.scenarios.pop(0)
        stream = events(name)
        if self.canceled:
            stream = [e for e in stream if e["event"] != "playbook_on_stats"][:12]
        tracker = replay(stream, progress)
        if results is not None:
            directory = request.artifacts_dir / "report"
            directory.mkdir(parents=True, exist_ok=True)
            (directory / "verify.json").write_text(json.dumps(results))
        status = "canceled" if self.canceled else ("successful" if tracker.converged else "failed")
        return RunResult(status=status, rc=0 if status == "successful" else 2, tracker=tracker, run_dir=None)


def run_cli(argv, runner=None, environ=None, **kwargs):
    out, err = io.StringIO(), io.StringIO()
    runner = runner or FakeRunner()
    code = cli.main(
        argv, out=out, err=err, runner_factory=lambda root: runner,
        environ=environ if environ is not None else {"HOME": "/nonexistent"}, **kwargs,
    )
    return code, out.getvalue(), err.getvalue(), runner


@pytest.fixture
def inventory(tmp_path):
    path = tmp_path / "hosts.yml"
    path.write_text(
        "---\n# demo inventory\nall:\n  children:\n    control_plane:\n      hosts:\n        cp1:\n"
        "          kubelab_node_ip: 192.0.2.10\n    workers:\n      hosts:\n        w1:\n"
        "          kubelab_node_ip: 192.0.2.11\n"
    )
    return path


def base(tmp_path, inventory):
    return ["-i", str(inventory), "--artifacts-dir", str(tmp_path / "art")]


# --- parsing -----------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["up", "--help"], ["verify", "--help"], ["add-worker", "--help"], ["reset", "--help"],
     ["demo", "--help"], ["inventory", "check", "--help"]],
)
def test_every_command_has_help(argv, capsys):
    assert cli.main(argv) == 0
    assert "usage: kubelab" in capsys.readouterr().out


def test_demo_help_says_it_is_not_a_real_cluster(capsys):
    cli.main(["demo", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "OFFLINE" in text and "stand-ins (test doubles) for CRI-O, kubeadm and kubelet" in text
    assert "NOT a real Kubernetes cluster" in text


@pytest.mark.parametrize(
    "argv",
    [[], ["up", "-e", "novalue"], ["up", "-e", "1bad=x"], ["reset"], ["reset", "--node", "a", "--all"],
     ["add-worker", "w3"], ["up", "--keep-runs", "0"], ["inventory"], ["bogus"]],
)
def test_usage_errors_exit_2(argv, capsys):
    assert cli.main(argv) == 2
    assert "usage:" in capsys.readouterr().err


def test_up_passes_tags_and_extra_vars(tmp_path, inventory):
    code, out, err, runner = run_cli(
        ["up", *base(tmp_path, inventory), "--tags", "crio", "-e", "a=1", "-e", "b=x=y"]
    )
    assert code == 0, err
    (request,) = runner.requests
    assert request.playbook == ROOT / "site.yml"
    assert request.inventory == inventory
    assert (request.limit, request.tags) == (None, "crio")
    assert request.extravars == {"a": "1", "b": "x=y", "kubelab_artifacts_dir": str(tmp_path / "art")}
    assert request.keep_runs == 10


def test_up_refuses_limit_before_running_anything(tmp_path, inventory):
    # site.yml's controller stages run on localhost, which --limit leaves out
    code, out, err, runner = run_cli(["up", *base(tmp_path, inventory), "--limit", "w1"])
    assert code == 2
    assert runner.requests == []
    assert err.startswith("kubelab: error: site.yml does not take --limit (given: w1): its stages on the controller")
    assert "kubelab add-worker NAME --address IP" in err


def test_the_limit_refusal_is_the_preflight_role_s_one_text(tmp_path, inventory):
    """kubelab up --limit prints what site.yml's preflight prints (roles/preflight/vars/main.yml), no copy."""
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar, trust_as_template

    text = yaml.safe_load((ROOT / "roles" / "preflight" / "vars" / "main.yml").read_text())[
        "__preflight_limit_refusal"]
    role_says = Templar(loader=DataLoader(), variables={"ansible_limit": "w1,w2"}).template(trust_as_template(text))
    _code, _out, err, _runner = run_cli(["up", *base(tmp_path, inventory), "--limit", "w1,w2"])
    assert err == "kubelab: error: %s\n" % role_says.strip()
    assert not hasattr(cli, "LIMIT_REFUSAL")


def test_cmdline_carries_extra_vars_only_through_the_pipe(tmp_path):
    request = RunRequest(playbook=ROOT / "site.yml", label="up", inventory=Path("/inv.yml"),
                         limit="w1", extravars={"token": "s3cr3t"})
    args = build_cmdline(request, Path("/run/pipe"))
    assert args == ["-i", "/inv.yml", "--limit", "w1", "-e", "@/run/pipe", str(ROOT / "site.yml")]
    assert "s3cr3t" not in shlex.join(args)
    with pytest.raises(ValueError):
        build_cmdline(request, None)


def test_playbook_env_is_an_allow_list():
    environ = {"PATH": "/usr/bin", "HOME": "/home/op", "AWS_SECRET_ACCESS_KEY": "x",
               "ANSIBLE_CONFIG": "/elsewhere.cfg", "CONTAINERS_CONF": "/c.conf", "PYTHONPATH": "/p"}
    env = playbook_env(ROOT, environ)
    assert env == {
        "HOME": "/home/op",
        "CONTAINERS_CONF": "/c.conf",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}/usr/bin",
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "ANSIBLE_INVENTORY_UNPARSED_FAILED": "True",
    }
    assert set(env) - {"PATH", "ANSIBLE_CONFIG", "ANSIBLE_INVENTORY_UNPARSED_FAILED"} <= set(PASSTHROUGH_ENV)


# --- up ----------------------------------------------------------------------


def test_up_converged_and_verified_exits_0(tmp_path, inventory):
    code, out, err, _ = run_cli(["up", *base(tmp_path, inventory)])
    assert code == 0, err
    assert "cp1" in out and "w1" in out and "not converged" not in out
    assert "1 checks: 1 passed, 0 failed, 0 skipped" in out
    assert f"Report: {tmp_path / 'art' / 'report' / 'verify.json'}" in out
    assert err == ""


def test_up_with_failed_verification_exits_3(tmp_path, inventory):
    code, out, err, _ = run_cli(["up", *base(tmp_path, inventory)], FakeRunner([("converged", FAILING)]))
    assert code == 3
    assert "FAIL  ping" in out and "expected: reply" in out and "observed: permission denied" in out
    assert "verification failed" in err


def test_failing_verify_play_is_a_verification_failure(tmp_path, inventory):
    """roles/verify fails its play when a check fails: exit 3, not 1."""
    code, out, err, _ = run_cli(["up", *base(tmp_path, inventory)], FakeRunner([("verify_failed", FAILING)]))
    assert code == 3
    assert "kubelab: error: host cp1: task 'Every check passed' (Stage verify - matrix and report) failed: " \
        "1 of 2 checks failed: ping-pod" in err
    assert "FAIL  ping" in out


def test_host_failure_outside_verify_wins_over_verification(tmp_path, inventory):
    code, _out, _err, _ = run_cli(["up", *base(tmp_path, inventory)], FakeRunner([("failed", FAILING)]))
    assert code == 1


def test_up_without_report_exits_3(tmp_path, inventory):
    code, out, err, _ = run_cli(["up", *base(tmp_path, inventory)], FakeRunner([("converged", None)]))
    assert code == 3
    assert "No verification report was written by this run" in out


def test_stale_report_from_an_earlier_run_is_not_used(tmp_path, inventory):
    old = tmp_path / "art" / "report" / "old.json"
    old.parent.mkdir(parents=True)
    old.write_text(json.dumps(PASSING))
    os.utime(old, (1000, 1000))
    code, out, _err, _ = run_cli(["up", *base(tmp_path, inventory)], FakeRunner([("converged", None)]))
    assert code == 3 and "old.json" not in out


def test_up_with_failed_hosts_exits_1_with_host_and_task(tmp_path, inventory):
    code, out, err, _ = run_cli(["up", *base(tmp_path, inventory)], FakeRunner([("failed", None)]))
    assert code == 1
    lines = err.splitlines()
    assert lines == [
        "kubelab: error: host w2: task 'Check the inventory' (Stage 1 - preflight) was unreachable: "
        "Task failed: Failed to connect to the host via ssh: ssh: connect to host 127.0.0.1 port 1: "
        "Connection refused",
        "kubelab: error: host w1: task 'Install CRI-O' (Stage 2 - nodes) failed: "
        "cri-o 1.35.0 is not available from the repository",
    ]
    assert "Traceback" not in out + err
    summary = {line.split()[0]: line for line in out.splitlines() if line[:3] in ("cp1", "w1 ", "w2 ")}
    assert summary["w1"].endswith("<- not converged") and summary["w2"].endswith("<- not converged")
    assert not summary["cp1"].endswith("<- not converged")


def test_ctrl_c_says_where_the_run_stopped(tmp_path, inventory):
    code, out, err, _ = run_cli(["up", *base(tmp_path, inventory)], FakeRunner(canceled=True))
    assert code == 130
    assert "Cancelled during Stage 1 - preflight, task 'Tolerated failure'" in out
    assert "part-way through that stage" in out and "Rerun the same command" in out


def test_missing_inventory_is_one_sentence(tmp_path):
    code, out, err, runner = run_cli(["up", "-i", str(tmp_path / "none.yml")])
    assert code == 1 and runner.requests == []
    assert err == f"kubelab: error: The inventory {tmp_path / 'none.yml'} does not exist.\n"


def test_inventory_and_artifacts_default_from_environment(tmp_path, inventory):
    environ = {"KUBELAB_INVENTORY": str(inventory), "KUBELAB_ARTIFACTS_DIR": str(tmp_path / "a2")}
    code, _out, err, runner = run_cli(["up"], environ=environ)
    assert code == 0, err
    assert runner.requests[0].inventory == inventory
    assert runner.requests[0].artifacts_dir == tmp_path / "a2"


# --- verify ------------------------------------------------------------------


def test_verify_runs_verify_yml_and_writes_json_and_junit(tmp_path, inventory):
    argv = ["verify", *base(tmp_path, inventory), "--json", str(tmp_path / "o" / "r.json"),
            "--junit", str(tmp_path / "o" / "r.xml")]
    code, out, err, runner = run_cli(argv, FakeRunner([("converged", FAILING)]))
    assert code == 3
    assert runner.requests[0].playbook == ROOT / "playbooks" / "verify.yml"
    assert json.loads((tmp_path / "o" / "r.json").read_text()) == FAILING
    assert 'failures="1"' in (tmp_path / "o" / "r.xml").read_text()
    assert out.index("== pod") < out.index("== external")


def test_verify_passing(tmp_path, inventory):
    code, out, _err, _ = run_cli(["verify", *base(tmp_path, inventory)])
    assert code == 0 and "PASS  http" in out


def test_verify_without_report_is_an_error(tmp_path, inventory):
    code, _out, err, _ = run_cli(["verify", *base(tmp_path, inventory)], FakeRunner([("converged", None)]))
    assert code == 3 and "the verify stage wrote no report" in err


# --- reset -------------------------------------------------------------------


def test_reset_node(tmp_path, inventory):
    code, out, _err, runner = run_cli(["reset", *base(tmp_path, inventory), "--node", "w1"],
                                      FakeRunner([("converged", None)]))
    assert code == 0 and "Reset done: w1." in out
    request = runner.requests[0]
    assert request.playbook == ROOT / "playbooks" / "reset.yml"
    assert request.extravars["reset_node"] == "w1"
    assert "reset_all" not in request.extravars


def test_reset_all_needs_yes(tmp_path, inventory):
    code, _out, err, runner = run_cli(["reset", *base(tmp_path, inventory), "--all"])
    assert code == 1 and runner.requests == []
    assert "add --yes to confirm" in err
    code, _out, _err, runner = run_cli(["reset", *base(tmp_path, inventory), "--all", "--yes"],
                                       FakeRunner([("converged", None)]))
    assert code == 0
    assert runner.requests[0].extravars["reset_all"] is True
    assert runner.requests[0].extravars["reset_confirm"] == "yes"


def test_reset_failure_exits_1(tmp_path, inventory):
    code, _out, err, _ = run_cli(["reset", *base(tmp_path, inventory), "--node", "w1"],
                                 FakeRunner([("failed", None)]))
    assert code == 1 and "task 'Install CRI-O'" in err


# --- add-worker --------------------------------------------------------------


def test_add_worker_edits_then_converges_and_shows_the_node(tmp_path, inventory):
    code, out, err, runner = run_cli(["add-worker", "w2", "--address", "192.0.2.12", *base(tmp_path, inventory)],
                                     FakeRunner([("failed", None)]))
    # The recorded "failed" run has w2 unreachable: the command says so.
    assert code == 1
    assert inventory.read_text().endswith(
        "        w2:\n          ansible_host: 192.0.2.12\n          kubelab_node_ip: 192.0.2.12\n")
    assert f"Added w2 (192.0.2.12) to group 'workers' in {inventory}." in out
    assert "New node w2:\n  NOT converged: ok=0 changed=0 failed=0 unreachable=1" in out
    assert runner.requests[0].playbook == ROOT / "site.yml"


def test_add_worker_converged(tmp_path, inventory):
    inventory.write_text(inventory.read_text().replace("w1:", "w0:").replace("192.0.2.11", "192.0.2.9"))
    code, out, _err, _ = run_cli(["add-worker", "w1", "--address", "192.0.2.11", *base(tmp_path, inventory)])
    assert code == 0
    assert "New node w1:\n  converged: ok=4 changed=1 failed=0 unreachable=0" in out


def test_add_worker_refusal_runs_nothing(tmp_path, inventory):
    before = inventory.read_bytes()
    code, _out, err, runner = run_cli(["add-worker", "w9", "--address", "192.0.2.11", *base(tmp_path, inventory)])
    assert code == 1 and runner.requests == []
    assert err == "kubelab: error: Address 192.0.2.11 is already used by host w1 (kubelab_node_ip); nothing was changed.\n"
    assert inventory.read_bytes() == before


@pytest.mark.parametrize("name, address, problem", [
    ("w2", "10.244.1.5", "host w2: variable kubelab_node_ip: 10.244.1.5 is inside kubelab_pod_network_cidr "
                         "10.244.0.0/16"),
    ("W2", "192.0.2.12", "host W2: not a valid Kubernetes node name"),
])
def test_add_worker_the_validator_refuses_leaves_the_inventory_unchanged(tmp_path, inventory, name, address,
                                                                          problem):
    """The edited copy is validated (as preflight would) before the file is written (review finding 15)."""
    before = inventory.read_bytes()
    code, out, err, runner = run_cli(["add-worker", name, "--address", address, "--no-converge",
                                      *base(tmp_path, inventory)])
    assert code == 1 and runner.requests == []
    assert inventory.read_bytes() == before
    assert err.startswith(f"kubelab: error: Adding {name} ({address}) would leave the inventory with 1 problem; "
                          f"nothing was changed in {inventory}:\n  - {problem}")
    assert "Added" not in out


def test_add_worker_no_converge(tmp_path, inventory):
    code, out, _err, runner = run_cli(
        ["add-worker", "w2", "--address", "192.0.2.12", "--no-converge", *base(tmp_path, inventory)])
    assert code == 0 and runner.requests == []
    assert "w2" in inventory.read_text()


class BrokenRunner:
    def __init__(self, exc):
        self.exc = exc

    def run(self, request, progress):
        raise self.exc


def test_unexpected_errors_are_one_line_without_traceback(tmp_path, inventory):
    code, out, err, _ = run_cli(["up", *base(tmp_path, inventory)], BrokenRunner(RuntimeError("boom")))
    assert code == 1
    assert err == "kubelab: internal error: RuntimeError: boom (set KUBELAB_DEBUG=1 for the traceback).\n"
    code, out, err, _ = run_cli(["up", *base(tmp_path, inventory)],
                                BrokenRunner(PermissionError(13, "Permission denied", "/art/runs")))
    assert code == 1
    assert err == "kubelab: error: Permission denied (/art/runs).\n"
    with pytest.raises(RuntimeError):
        run_cli(["up", *base(tmp_path, inventory)], BrokenRunner(RuntimeError("boom")),
                environ={"KUBELAB_DEBUG": "1"})
