"""What kubeadm's SystemVerification preflight check says per node, and what
kubelab therefore ignores (module_utils/kubelab_sysverify.py), and how that
plan reaches `kubeadm init` (the control plane's kubeadm configuration) and
`kubeadm join` (the workers' argv).

The rules come from k8s.io/system-validators as each kubeadm minor vendors it
(see the module's docstring and roles/preflight/README.md).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

from ansible.module_utils.kubelab_sysverify import (
    kernel_supported,
    merge_ignored,
    rules_for,
    system_verification,
)

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]

EL8 = "4.18.0-553.el8_10.x86_64"
CENTOS85 = "4.18.0-348.7.1.el8_5.x86_64"
EL9 = "5.14.0-503.14.1.el9_5.x86_64"
DEBIAN12 = "6.1.0-28-amd64"


@pytest.mark.parametrize(
    "kernel,cgroup,version,ignored",
    [
        # kubeadm 1.35 (system-validators v1.12.1): the kernel only warns; cgroup v1 with kubelet 1.35 fails
        (EL8, 1, "1.35", ["SystemVerification"]),   # EL8 as it boots
        (CENTOS85, 1, "1.35", ["SystemVerification"]),
        (EL8, 2, "1.35", []),                        # EL8 moved to cgroup v2 (or the test node)
        (EL9, 2, "1.35", []),                        # kubernetes/kubernetes#131898 is a warning since v1.10.1
        (DEBIAN12, 2, "1.35", []),
        (DEBIAN12, 1, "1.35", ["SystemVerification"]),  # cgroup v1 fails whatever the kernel
        # kubeadm 1.34 (v1.10.x): kernel and cgroup v1 both only warn
        (EL8, 1, "1.34", []),
        (EL9, 2, "1.34", []),
        (DEBIAN12, 1, "1.34", []),
        # kubeadm 1.32/1.33 (v1.9.x): 4.18 is refused, 5.14 accepted, cgroup v1 warns
        (EL8, 1, "1.33", ["SystemVerification"]),
        (EL8, 2, "1.32", ["SystemVerification"]),
        (EL9, 2, "1.33", []),
        (DEBIAN12, 1, "1.33", []),
        # kubeadm 1.31 (v1.8.0): any 3.10+ kernel
        (EL8, 1, "1.31", []),
        # a later minor keeps the newest known rules
        (EL8, 1, "1.36", ["SystemVerification"]),
        (EL9, 2, "1.36", []),
    ],
)
def test_what_is_ignored(kernel, cgroup, version, ignored):
    result = system_verification(kernel, cgroup, version)
    assert result["ignore"] == ignored
    assert bool(result["errors"]) == bool(ignored)
    if ignored:
        assert result["reason"].startswith("kubeadm 1.%s's SystemVerification check fails here" % version.split(".")[1])
    else:
        assert result["reason"].startswith("nothing ignored")


def test_reasons_name_the_cause():
    v1 = system_verification(EL8, 1, "1.35")
    assert v1["errors"] == ["cgroup v1 with kubelet 1.35"]
    assert "failCgroupV1: false" in v1["reason"]
    assert any(EL8 in w and "v1.12.x" in w for w in v1["warnings"])
    old = system_verification(EL8, 2, "1.33")
    assert old["errors"] == ["kernel %s matches none of kubeadm 1.33's supported releases (system-validators v1.9.x)" % EL8]
    assert "failCgroupV1" not in old["reason"]
    el9 = system_verification(EL9, 2, "1.35")
    assert el9["errors"] == [] and "only warns" in el9["reason"] and EL9 in el9["reason"]
    clean = system_verification(DEBIAN12, 2, "1.35")
    assert clean == {"errors": [], "warnings": [], "ignore": [],
                     "reason": "nothing ignored: kernel %s and cgroup v2 pass kubeadm 1.35's SystemVerification check"
                     % DEBIAN12}


def test_1_34_and_1_35_differ_only_in_cgroup_v1():
    assert rules_for("1.34")["patterns"] == rules_for("1.35")["patterns"]
    assert not rules_for("1.34")["cgroup_v1_error"] and rules_for("1.35")["cgroup_v1_error"]
    assert not rules_for("1.34")["kernel_error"] and not rules_for("1.35")["kernel_error"]


@pytest.mark.parametrize("kernel,version,supported", [
    ("5.4.0-200-generic", "1.35", True), ("5.10.0-33-amd64", "1.35", True), ("5.15.0-1-generic", "1.35", True),
    (EL9, "1.35", False), (EL8, "1.35", False), ("4.19.0-27-amd64", "1.35", False), ("6.18.44", "1.35", True),
    ("10.0.1", "1.35", True), ("4.19.0-27-amd64", "1.33", True), ("4.20.1", "1.33", True), (EL8, "1.33", False),
    (EL9, "1.33", True),
])
def test_kernel_patterns(kernel, version, supported):
    assert kernel_supported(kernel, version) is supported


@pytest.mark.parametrize("args", [("", 2, "1.35"), (EL8, 3, "1.35"), (EL8, "x", "1.35"), (EL8, 2, "1.x"),
                                  (EL8, 2, "2.0"), (EL8, 2, None)])
def test_bad_input_is_refused(args):
    with pytest.raises(ValueError):
        system_verification(*args)


def test_merge_ignored_keeps_first_spelling():
    assert merge_ignored(["Swap"], ["SystemVerification", "swap"], None, ["systemverification"]) == ["Swap", "SystemVerification"]
    assert merge_ignored([], []) == []


def test_ignored_preflight_errors_keeps_all_alone():
    from ansible.module_utils.kubelab_sysverify import ignored_preflight_errors

    assert ignored_preflight_errors(["Swap"], ["SystemVerification", "swap"]) == ["Swap", "SystemVerification"]
    assert ignored_preflight_errors(["NumCPU", "Mem"], ["ALL"]) == ["all"]
    assert ignored_preflight_errors(["all", "Mem"], None) == ["all"]
    assert ignored_preflight_errors([], []) == []


def test_the_roles_merge_with_the_one_function_not_jinja_copies():
    """kubeadm-config.yaml.j2, control_plane's early NumCPU/Mem check and the workers' join use the kubelab role's
    filter, which is module_utils/kubelab_sysverify.py ignored_preflight_errors (review finding 10)."""
    from ansible.module_utils import kubelab_sysverify

    plugin = _load("kubelab_filters_for_test", REPO / "roles" / "kubelab" / "filter_plugins" / "kubelab.py")
    assert plugin.FilterModule().filters()["kubelab_ignored_preflight_errors"] is plugin.ignored_preflight_errors
    assert plugin._SYSVERIFY.ignored_preflight_errors.__code__.co_filename == \
        kubelab_sysverify.ignored_preflight_errors.__code__.co_filename
    for path in (REPO / "roles" / "control_plane" / "templates" / "kubeadm-config.yaml.j2",
                 REPO / "roles" / "control_plane" / "tasks" / "init.yml",
                 REPO / "roles" / "workers" / "tasks" / "join.yml"):
        text = path.read_text()
        assert "kubelab_ignored_preflight_errors(kubelab_kubeadm_ignore_preflight_errors" in text, path
        assert "unique(case_sensitive=False)" not in text, path
        assert "map('lower') | list else" not in text, path


# ---------------------------------------------------------------- the roles use it


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


kubeadm_config = _load("kubelab_test_kubeadm_config", REPO / "tests" / "unit" / "test_kubeadm_config.py")


@pytest.mark.parametrize("plan,own,expected", [
    (["SystemVerification"], [], ["SystemVerification"]),
    (["SystemVerification"], ["Swap", "systemverification"], ["Swap", "systemverification"]),
    ([], ["Swap"], ["Swap"]),
])
def test_init_configuration_merges_the_plan(plan, own, expected):
    _, docs = kubeadm_config.render("v1.35.0", kubelab_kubeadm_ignore_preflight_errors=plan,
                                    control_plane_ignore_preflight_errors=own)
    assert docs["InitConfiguration"]["nodeRegistration"]["ignorePreflightErrors"] == expected


def test_init_configuration_without_anything_to_ignore():
    _, docs = kubeadm_config.render("v1.35.0", kubelab_kubeadm_ignore_preflight_errors=[])
    assert "ignorePreflightErrors" not in docs["InitConfiguration"]["nodeRegistration"]
    _, docs = kubeadm_config.render("v1.35.0")  # the fact is absent (control_plane run alone)
    assert "ignorePreflightErrors" not in docs["InitConfiguration"]["nodeRegistration"]


def _join_argv(**variables):
    tasks = yaml.safe_load((REPO / "roles" / "workers" / "tasks" / "join.yml").read_text())
    block = next(t for t in tasks if t["name"] == "Join the cluster")
    task = block["block"][0]
    defaults = yaml.safe_load((REPO / "roles" / "workers" / "defaults" / "main.yml").read_text())
    local = {**defaults, "__workers_join_endpoint": "192.0.2.10:6443",
             "__workers_token": {"stdout": "kubeadm join 192.0.2.10:6443 --token abcdef.0123456789abcdef "
                                           "--discovery-token-ca-cert-hash sha256:" + "a" * 64},
             "__workers_plan": {"ca_cert_hash": "sha256:" + "a" * 64},
             "kubelab_cri_socket": "unix:///var/run/crio/crio.sock", **variables}
    templar = Templar(loader=DataLoader(), variables=local)
    for name, expr in task.get("vars", {}).items():
        local[name] = templar.template(trust_as_template(expr))
    templar = Templar(loader=DataLoader(), variables=local)
    return templar.template(trust_as_template(task["ansible.builtin.command"]["argv"]))


def test_join_passes_the_plan():
    argv = _join_argv(kubelab_kubeadm_ignore_preflight_errors=["SystemVerification"])
    assert argv[:2] == ["kubeadm", "join"]
    assert argv[-1] == "--ignore-preflight-errors=SystemVerification"
    argv = _join_argv(kubelab_kubeadm_ignore_preflight_errors=["SystemVerification"],
                      workers_ignore_preflight_errors=["Swap"], workers_join_extra_args=["--v=5"])
    assert argv[-2:] == ["--ignore-preflight-errors=Swap,SystemVerification", "--v=5"]


def test_join_without_anything_to_ignore():
    for argv in (_join_argv(kubelab_kubeadm_ignore_preflight_errors=[]), _join_argv()):
        assert not [a for a in argv if a.startswith("--ignore-preflight-errors")]
        assert argv[argv.index("--cri-socket") + 1] == "unix:///var/run/crio/crio.sock"
