"""node_prep: the probe decides, converge.yml changes.

A no-op rerun runs the probe and nothing else, so every change task must be
guarded by one of the role's __node_prep_need_* conditions, and those
conditions must see every drift the tasks would repair. The structure is read
from the role's YAML; the conditions are evaluated with Ansible's templating
on probe outputs (what the raw probe prints, parsed as the role parses it).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

pytestmark = pytest.mark.unit

ROLE = Path(__file__).resolve().parents[2] / "roles" / "node_prep"
READ_ONLY = {"ansible.builtin.debug", "ansible.builtin.assert", "ansible.builtin.set_fact", "ansible.builtin.fail"}


def load(rel):
    return yaml.safe_load((ROLE / rel).read_text())


def module_of(task):
    return next(k for k in task if "." in k or k in ("kubelab_firewalld",))


def test_every_change_is_guarded_by_one_listed_need():
    needs = load("vars/main.yml")["__node_prep_needs"]
    used = set()
    for task in load("tasks/converge.yml"):
        if module_of(task) in READ_ONLY:
            continue
        when = task.get("when")
        assert isinstance(when, str) and when.startswith("__node_prep_need_"), task["name"]
        name = when.split()[0]
        assert name in needs, "%s: %s is not in __node_prep_needs" % (task["name"], name)
        used.add(name)
    assert used == set(needs), "needs no task uses: %s" % (set(needs) - used)


def test_needed_is_any_of_exactly_the_listed_needs():
    import re

    role_vars = load("vars/main.yml")
    named = set(re.findall(r"__node_prep_need_[a-z_]+", role_vars["__node_prep_needed"]))
    assert named == set(role_vars["__node_prep_needs"])
    assert " and " not in role_vars["__node_prep_needed"]


def test_main_includes_converge_only_when_something_is_needed():
    main = load("tasks/main.yml")
    includes = [t for t in main if "ansible.builtin.include_tasks" in t]
    assert [t["ansible.builtin.include_tasks"] for t in includes] == ["converge.yml"]
    assert includes[0]["when"] == "__node_prep_needed | bool"
    # nothing in main.yml but the probe and bookkeeping changes anything
    for task in main:
        mod = module_of(task)
        assert mod in READ_ONLY | {"ansible.builtin.raw", "ansible.builtin.include_tasks"}, task["name"]
        if mod == "ansible.builtin.raw":
            assert task["changed_when"] is False and task["check_mode"] is False


def templar_for(state, container=False, selinux_mode="permissive", inventory_hostname="w1"):
    variables = {}
    for source in ("defaults/main.yml", "vars/main.yml"):
        for key, value in load(source).items():
            variables[key] = trust_as_template(value) if isinstance(value, str) else value
    variables.update({
        "kubelab_node_container": container,
        "node_prep_selinux_mode": selinux_mode,
        "inventory_hostname": inventory_hostname,
        "groups": {"control_plane": ["cp1"], "workers": ["w1"], "all": ["cp1", "w1"]},
        "kubelab_control_plane_group": "control_plane",
        "kubelab_workers_group": "workers",
        "kubelab_pod_network_cidr": "10.244.0.0/16",
        "hostvars": {"cp1": {"kubelab_node_ip": "192.0.2.10"}, "w1": {"kubelab_node_ip": "192.0.2.11"}},
        "__node_prep_state": state,
    })
    return Templar(loader=DataLoader(), variables=variables)


def value(templar, name):
    return templar.template(trust_as_template("{{ %s }}" % name))


def converged_state(container=False, selinux=True):
    """What the probe prints on a node converge.yml has just brought in line."""
    t = templar_for({}, container=container)
    files = {
        "/etc/modules-load.d/kubelab.conf": value(t, "__node_prep_modules_content | hash('sha1')"),
        "/etc/sysctl.d/99-kubelab.conf": value(t, "__node_prep_sysctl_content | hash('sha1')"),
    }
    state = {"swaps": "0", "fstab_swap": "0", "firewalld": "active",
             "hosts_block": value(t, "__node_prep_hosts_written | hash('sha1')"),
             "fw_permanent": "10250/tcp 30000-32767/tcp 8472/udp", "fw_runtime": "10250/tcp 30000-32767/tcp 8472/udp",
             "fwt_permanent_sources": "10.244.0.0/16", "fwt_runtime_sources": "10.244.0.0/16",
             "fwt_permanent_interfaces": "cni0 flannel.1", "fwt_runtime_interfaces": "cni0 flannel.1",
             "module.overlay": "loaded", "module.br_netfilter": "loaded",
             "sysctl.net.bridge.bridge-nf-call-iptables": "1", "sysctl.net.bridge.bridge-nf-call-ip6tables": "1",
             "sysctl.net.ipv4.ip_forward": "1"}
    state.update({"file." + k: "regular file:644:root:root:" + v for k, v in files.items()})
    if selinux:
        state.update({"selinux": "Permissive", "selinux_line": "SELINUX=permissive"})
    else:
        state["selinux"] = "<absent>"
    return state


def needs_of(state, **kw):
    t = templar_for(state, **kw)
    out = {n: value(t, n) for n in load("vars/main.yml")["__node_prep_needs"]}
    return {n for n, v in out.items() if v in (True, "True", "true")}, value(t, "__node_prep_needed")


def test_a_converged_node_needs_nothing():
    assert needs_of(converged_state()) == (set(), False)
    assert needs_of(converged_state(selinux=False)) == (set(), False)


@pytest.mark.parametrize("change, need", [
    ({"swaps": "1"}, "__node_prep_need_swapoff"),
    ({"fstab_swap": "2"}, "__node_prep_need_fstab"),
    ({"file./etc/modules-load.d/kubelab.conf": "<absent>"}, "__node_prep_need_modules_file"),
    ({"module.br_netfilter": "absent"}, "__node_prep_need_modprobe"),
    ({"file./etc/sysctl.d/99-kubelab.conf": "regular file:644:root:root:" + "0" * 40}, "__node_prep_need_sysctl_file"),
    ({"sysctl.net.ipv4.ip_forward": "0"}, "__node_prep_need_sysctl_apply"),
    ({"selinux_line": "SELINUX=enforcing"}, "__node_prep_need_selinux_config"),
    ({"selinux": "Enforcing"}, "__node_prep_need_setenforce"),
    ({"fw_runtime": "10250/tcp"}, "__node_prep_need_firewalld"),
    ({"fw_permanent": ""}, "__node_prep_need_firewalld"),
    ({"fwt_runtime_sources": ""}, "__node_prep_need_firewalld_trusted"),
    ({"fwt_permanent_sources": "10.99.0.0/16"}, "__node_prep_need_firewalld_trusted"),
    ({"fwt_permanent_interfaces": "cni0"}, "__node_prep_need_firewalld_trusted"),
    ({"fwt_runtime_interfaces": ""}, "__node_prep_need_firewalld_trusted"),
    ({"hosts_block": "da39a3ee5e6b4b0d3255bfef95601890afd80709"}, "__node_prep_need_hosts"),
])
def test_each_drift_is_seen(change, need):
    state = converged_state()
    state.update(change)
    needs, needed = needs_of(state)
    assert needs == {need}
    assert needed is True


def test_a_container_does_not_modprobe_but_reports_it():
    state = converged_state(container=True, selinux=False)
    state["module.br_netfilter"] = "absent"
    assert needs_of(state, container=True) == (set(), False)
    notes = value(templar_for(state, container=True), "__node_prep_notes")
    assert any("modprobe skipped for: br_netfilter" in n for n in notes)
    assert any("SELinux is not present" in n for n in notes)
