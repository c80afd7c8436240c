"""`kubelab inventory check`: the shared validation rules
(module_utils/kubelab_validate.py) applied to an inventory as Ansible reads it
(ansible-inventory, so group_vars count), every problem printed at once."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from kubelab import cli
from kubelab.inventory_check import flatten_groups, validator_input

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


def check(inventory: Path):
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(["inventory", "check", "-i", str(inventory)], out=out, err=err, environ={"HOME": "/nonexistent"})
    return code, out.getvalue(), err.getvalue()


def test_every_problem_is_printed(tmp_path):
    inv = tmp_path / "inv"
    (inv / "group_vars" / "all").mkdir(parents=True)
    (inv / "hosts.yml").write_text(
        "all:\n  children:\n    control_plane:\n      hosts:\n"
        "        cp1: {kubelab_node_ip: 192.0.2.10}\n        cp2: {kubelab_node_ip: 192.0.2.20}\n"
        "    workers:\n      hosts:\n        w1: {kubelab_node_ip: 192.0.2.10}\n"
        "        W_2: {kubelab_node_ip: not-an-ip}\n"
    )
    (inv / "group_vars" / "all" / "cluster.yml").write_text(
        "kubelab_kubernetes_version: 1.3\nkubelab_service_cidr: 10.96.0.0/12\n"
        "kubelab_cluster_dns: 10.200.0.10\nkubelab_pod_network_cidr: '{{ some_template }}'\n"
    )
    code, out, _err = check(inv)
    assert code == 1
    problems = [line[4:] for line in out.splitlines() if line.startswith("  - ")]
    assert len(problems) == 6, out
    assert out.splitlines()[0] == f"{inv}: 6 problems:"
    joined = "\n".join(problems)
    assert "group 'control_plane' has 2 hosts" in joined
    assert "host w1: kubelab_node_ip 192.0.2.10 is already used by host cp1" in joined
    assert "host W_2: not a valid Kubernetes node name" in joined
    assert "host W_2: kubelab_node_ip 'not-an-ip' is not an IP address" in joined
    assert "kubelab_kubernetes_version: 1.3 is not of the form 1.NN" in joined
    assert "kubelab_cluster_dns: 10.200.0.10 is outside kubelab_service_cidr" in joined


def test_the_lab_inventory_is_valid():
    code, out, _err = check(ROOT / "inventory" / "lab" / "hosts.yml")
    assert code == 0, out
    assert out.endswith("no problems found.\n")


def test_unreadable_inventory_is_one_sentence(tmp_path):
    bad = tmp_path / "hosts.yml"
    bad.write_text("all:\n  hosts: [unclosed\n")
    code, _out, err = check(bad)
    assert code == 1
    assert err.startswith(f"kubelab: error: Ansible cannot read the inventory {bad}: Failed to parse inventory")
    assert len(err.strip().splitlines()) == 1


def test_groups_are_flattened_through_children():
    data = {
        "_meta": {"hostvars": {"a": {"kubelab_node_ip": "192.0.2.1", "kubelab_x": "{{ y }}", "other": 1},
                               "b": {}}},
        "all": {"children": ["ungrouped", "k8s"]},
        "k8s": {"children": ["control_plane", "workers"]},
        "control_plane": {"hosts": ["a"]},
        "workers": {"hosts": ["b"]},
    }
    groups = flatten_groups(data)
    assert groups["all"] == ["a", "b"] and groups["k8s"] == ["a", "b"] and groups["workers"] == ["b"]
    _groups, hostvars, settings = validator_input(data)
    assert hostvars == {"a": {"kubelab_node_ip": "192.0.2.1"}, "b": {}}
    assert settings == {}
