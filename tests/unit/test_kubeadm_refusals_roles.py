"""The roles never hand kubeadm what it refuses (see the kubeadm stand-in's CONTRACT.md).

- `all` next to a named check in the ignore list (ValidateIgnorePreflightErrors):
  the control plane's InitConfiguration and the workers' --ignore-preflight-errors
  carry only `all` when the union of the user's list and preflight's plan has it.
- every `kubeadm reset` names the CRI socket (DetectCRISocket refuses a host
  with several known sockets when none is given).
- the join passes --node-name workers_node_name, the name the join plan uses.
- kubeadm init's NumCPU / Mem errors are said early by the control_plane role,
  with the way out.

Evaluates the roles' own YAML and template with Ansible's templating.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

from test_kubeadm_config import render

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


def tasks_of(path):
    """Every task in a task file, blocks flattened."""
    out = []

    def walk(items):
        for item in items or []:
            out.append(item)
            for key in ("block", "rescue", "always"):
                walk(item.get(key))

    walk(yaml.safe_load(path.read_text()))
    return out


def named(path, start):
    return next(t for t in tasks_of(path) if t.get("name", "").startswith(start))


def template(expr, variables):
    local = {k: trust_as_template(v) if isinstance(v, str) else v for k, v in variables.items()}
    return Templar(loader=DataLoader(), variables=local).template(trust_as_template(expr))


# --- `all` alone ------------------------------------------------------------------

@pytest.mark.parametrize("user, plan, expected", [
    (["all"], ["SystemVerification"], ["all"]),
    (["NumCPU"], ["ALL"], ["all"]),
    ([], ["SystemVerification"], ["SystemVerification"]),
    (["Swap"], ["SystemVerification", "swap"], ["Swap", "SystemVerification"]),
])
def test_init_configuration_ignores_all_alone(user, plan, expected):
    _, docs = render("v1.35.0", control_plane_ignore_preflight_errors=user, kubelab_kubeadm_ignore_preflight_errors=plan)
    assert docs["InitConfiguration"]["nodeRegistration"]["ignorePreflightErrors"] == expected


def join_argv(**overrides):
    join = named(ROOT / "roles" / "workers" / "tasks" / "join.yml", "Run kubeadm join")
    variables = {
        "__workers_join_endpoint": "192.0.2.10:6443",
        "__workers_token": {"stdout": "kubeadm join 192.0.2.10:6443 --token abcdef.0123456789abcdef "
                                      "--discovery-token-ca-cert-hash sha256:" + "a" * 64},
        "__workers_plan": {"ca_cert_hash": "sha256:" + "a" * 64},
        "kubelab_cri_socket": "unix:///var/run/crio/crio.sock",
        "workers_node_name": "w1.lab",
        "workers_ignore_preflight_errors": [],
        "workers_join_extra_args": [],
    }
    variables.update(overrides)
    for name, expr in join.get("vars", {}).items():
        variables[name] = trust_as_template(expr)
    return template(join["ansible.builtin.command"]["argv"], variables)


@pytest.mark.parametrize("user, plan, expected", [
    (["all"], ["SystemVerification"], "--ignore-preflight-errors=all"),
    (["Swap"], ["All"], "--ignore-preflight-errors=all"),
    (["Swap"], ["SystemVerification"], "--ignore-preflight-errors=Swap,SystemVerification"),
])
def test_join_ignores_all_alone(user, plan, expected):
    argv = join_argv(workers_ignore_preflight_errors=user, kubelab_kubeadm_ignore_preflight_errors=plan)
    assert [a for a in argv if a.startswith("--ignore-preflight-errors")] == [expected]


def test_join_passes_the_planned_node_name():
    argv = join_argv(workers_node_name="worker-one.lab")
    assert argv[argv.index("--node-name") + 1] == "worker-one.lab"
    assert argv[argv.index("--cri-socket") + 1] == "unix:///var/run/crio/crio.sock"
    assert "--config" not in argv


def test_join_plan_is_made_for_the_name_the_join_passes():
    describe = named(ROOT / "roles" / "workers" / "tasks" / "main.yml", "Describe this worker")
    assert describe["ansible.builtin.set_fact"]["__workers_self"]["node_name"] == "{{ workers_node_name }}"


# --- kubeadm reset names the CRI socket --------------------------------------------

RESET_FILES = [ROOT / "roles" / "control_plane" / "tasks" / "init.yml",
               ROOT / "roles" / "workers" / "tasks" / "join.yml",
               ROOT / "roles" / "reset" / "tasks" / "main.yml"]


@pytest.mark.parametrize("path", RESET_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_kubeadm_reset_names_the_cri_socket(path):
    resets = []
    for t in tasks_of(path):
        cmd = t.get("ansible.builtin.command")
        if cmd is None:
            continue
        argv = cmd["argv"] if isinstance(cmd, dict) else str(cmd).split()
        if argv[:2] == ["kubeadm", "reset"]:
            resets.append(argv)
    assert resets, f"no kubeadm reset in {path}"
    for argv in resets:
        assert "--cri-socket" in argv and argv[argv.index("--cri-socket") + 1] == "{{ kubelab_cri_socket }}", argv


def test_no_other_role_task_runs_kubeadm_reset():
    found = []
    for path in (ROOT / "roles").glob("*/tasks/*.yml"):
        for t in tasks_of(path):
            cmd = t.get("ansible.builtin.command")
            text = str(cmd.get("argv") if isinstance(cmd, dict) else cmd)
            if cmd is not None and "reset" in text and "kubeadm" in text:
                found.append(path)
    assert sorted(set(found)) == sorted(RESET_FILES)


# --- NumCPU / Mem before kubeadm init --------------------------------------------------

def small_check(nproc, memtotal_kb, user=(), plan=()):
    check = named(ROOT / "roles" / "control_plane" / "tasks" / "init.yml", "Check the control plane's CPUs and memory")
    variables = {
        "inventory_hostname": "cp1",
        "__control_plane_probe": {"stdout_lines": ["kubeadm_version=v1.35.0", f"nproc={nproc}",
                                                   f"memtotal_kb={memtotal_kb}"]},
        "control_plane_ignore_preflight_errors": list(user),
        "kubelab_kubeadm_ignore_preflight_errors": list(plan),
    }
    for name, expr in check["vars"].items():
        variables[name] = trust_as_template(expr)
    templar = Templar(loader=DataLoader(), variables=variables)
    if not templar.evaluate_conditional(trust_as_template(check["when"])):
        return None
    return templar.template(trust_as_template(check["ansible.builtin.fail"]["msg"]))


def test_one_cpu_is_said_before_kubeadm_init():
    msg = small_check(1, 4014532)
    assert msg.startswith("cp1: the number of available CPUs is 1, kubeadm needs 2 (check NumCPU).")
    assert "control_plane_ignore_preflight_errors: [NumCPU, Mem]" in msg
    assert "Mem)" not in msg


def test_little_memory_is_said_before_kubeadm_init():
    msg = small_check(4, 1000000)
    assert "the RAM is 976 MB, kubeadm needs 1700 MB (check Mem)" in msg and "NumCPU)" not in msg
    both = small_check(1, 1000000)
    assert "(errors NumCPU, Mem;" in both


@pytest.mark.parametrize("nproc, mem, user, plan", [
    (2, 1740800, (), ()),                         # exactly 1700 MB and 2 CPUs: kubeadm accepts
    (1, 1000000, ("NumCPU", "Mem"), ()),          # the documented way out
    (1, 1000000, ("numcpu", "MEM"), ()),          # case-insensitive, as kubeadm
    (1, 1000000, (), ("all",)),                   # preflight's plan ignores everything
    ("", "", (), ()),                             # the probe could not tell: kubeadm decides
])
def test_enough_or_ignored_is_not_stopped(nproc, mem, user, plan):
    assert small_check(nproc, mem, user, plan) is None


def test_ignoring_one_of_the_two_still_stops_for_the_other():
    msg = small_check(1, 1000000, user=("NumCPU",))
    assert "(check Mem)" in msg and "(check NumCPU)" not in msg


# --- workers_join_extra_args: no --config, no flag the role passes -------------------

@pytest.mark.parametrize("extra, clashing", [
    (["--config=/etc/kubeadm/join.yaml"], ["--config"]),
    (["--config", "/etc/kubeadm/join.yaml"], ["--config"]),
    (["--v=5", "--node-name", "w9", "--cri-socket=unix:///run/containerd/containerd.sock"],
     ["--node-name", "--cri-socket"]),
    (["--ignore-preflight-errors=all"], ["--ignore-preflight-errors"]),
    (["--tls-bootstrap-token", "abcdef.0123456789abcdef"], ["--tls-bootstrap-token"]),
    (["--discovery-token=abcdef.0123456789abcdef"], ["--discovery-token"]),
    (["--discovery-token-unsafe-skip-ca-verification"], ["--discovery-token-unsafe-skip-ca-verification"]),
    (["--token abcdef.0123456789abcdef"], ["--token"]),
    (["--v=5"], []),
    ([], []),
])
def test_extra_join_args_that_kubeadm_or_the_role_would_clash_with_are_refused(extra, clashing):
    """Preflight's validator refuses them (one list, module_utils/kubelab_validate.py), naming each flag and
    never a token; the workers role keeps no copy of the list (nor an assert printing the arguments)."""
    from ansible.module_utils.kubelab_validate import RULES

    tails = RULES["workers_join_extra_args"](extra, {})
    named_flags = [t.split("'", 2)[1].split("=")[0].split(" ")[0] for t in tails]
    assert named_flags == clashing
    assert not any("0123456789abcdef" in t for t in tails)
    assert not any(t.get("name", "").startswith("Check that workers_join_extra_args")
                   for t in tasks_of(ROOT / "roles" / "workers" / "tasks" / "main.yml"))
