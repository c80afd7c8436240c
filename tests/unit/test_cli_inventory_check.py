"""`kubelab inventory check`: the validation site.yml runs first on the
controller (module_utils/kubelab_validate.py with the roles' argument specs)
applied to an inventory as Ansible reads it (ansible-inventory: every host's
group_vars and host_vars, and the controller's), every problem printed at
once; an inventory Ansible cannot parse is explained with its line."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from kubelab import cli
from kubelab.inventory_check import flatten_groups, validator_input, yaml_file_problems

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]

HOSTS = (
    "all:\n  children:\n    control_plane:\n      hosts:\n"
    "        cp1: {kubelab_node_ip: 192.0.2.10}\n"
    "    workers:\n      hosts:\n"
    "        w1: {kubelab_node_ip: 192.0.2.11}\n"
    "        w2: {kubelab_node_ip: 192.0.2.12}\n"
)


def check(inventory: Path):
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(["inventory", "check", "-i", str(inventory)], out=out, err=err, environ={"HOME": "/nonexistent"})
    return code, out.getvalue(), err.getvalue()


def problems_of(out: str) -> list[str]:
    return [line[4:] for line in out.splitlines() if line.startswith("  - ")]


def make_inventory(tmp_path: Path, hosts: str = HOSTS, files: dict[str, str] | None = None) -> Path:
    inv = tmp_path / "inv"
    inv.mkdir()
    (inv / "hosts.yml").write_text(hosts)
    for name, text in (files or {}).items():
        path = inv / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return inv


def test_every_problem_is_printed(tmp_path):
    inv = make_inventory(
        tmp_path,
        "all:\n  children:\n    control_plane:\n      hosts:\n"
        "        cp1: {kubelab_node_ip: 192.0.2.10}\n        cp2: {kubelab_node_ip: 192.0.2.20}\n"
        "    workers:\n      hosts:\n        w1: {kubelab_node_ip: 192.0.2.10}\n"
        "        W_2: {kubelab_node_ip: not-an-ip}\n",
        {"group_vars/all/cluster.yml":
         "kubelab_kubernetes_version: 1.3\nkubelab_service_cidr: 10.96.0.0/12\n"
         "kubelab_cluster_dns: 10.200.0.10\nkubelab_pod_network_cidr: '{{ some_template }}'\n"},
    )
    code, out, _err = check(inv)
    assert code == 1
    problems = problems_of(out)
    assert out.splitlines()[0] == f"{inv}: 6 problems:"
    assert problems == [
        "inventory: group 'control_plane' has 2 hosts (cp1, cp2); exactly one control-plane host is required",
        "host W_2: not a valid Kubernetes node name (lowercase RFC 1123: letters, digits, '-' and '.')",
        "variable kubelab_kubernetes_version: 1.3 is not of the form 1.NN (for example \"1.35\"); quote it in YAML "
        "so 1.30 does not become 1.3",
        "variable kubelab_cluster_dns: 10.200.0.10 is outside kubelab_service_cidr 10.96.0.0/12",
        "host W_2: variable kubelab_node_ip: 'not-an-ip' is not an IP address",
        "host w1: kubelab_node_ip 192.0.2.10 is already used by host cp1; node addresses must be unique",
    ]


def test_every_host_s_own_variables_are_checked(tmp_path):
    # issue 14: a host variable on a host that is not the first one was never checked
    inv = make_inventory(tmp_path, files={
        "host_vars/w2.yml": 'crio_default_capabilities: ["CHOWN", "NET_RAW\\", \\"SYS_ADMIN"]\n',
        "group_vars/workers.yml": "crio_default_capabilites: [CHOWN, NET_RAW]\nworkers_token_ttl: 15 minutes\n",
        "group_vars/all.yml": "workloads_services:\n  - {name: web, port: 80, type: NodePort, node_port: 8080}\n"
                              "verify_body_pattern: 'Welcome to (nginx'\nkubelab_kubernetes_version: '1.99'\n",
    })
    code, out, _err = check(inv)
    assert code == 1
    assert problems_of(out) == [
        "variable kubelab_kubernetes_version: '1.99' is not a Kubernetes release (the newest minor kubelab knows of "
        "is 1.37); supported: 1.34, 1.35",
        "variable verify_body_pattern: 'Welcome to (nginx' is not a regular expression (Python re: missing ), "
        "unterminated subpattern at position 11)",
        "variable workloads_services: [0] (web) node_port 8080 is outside the nodePort range 30000-32767 "
        "(workloads_node_port_range)",
        "host w1, w2: variable crio_default_capabilites (value ['CHOWN', 'NET_RAW']): no kubelab role has this "
        "variable, likely a typo; did you mean crio_default_capabilities?",
        "host w1, w2: variable workers_token_ttl: '15 minutes' is not a duration like 15m, 1h30m or 10m0s (Go's "
        "time.ParseDuration)",
        "host w2: variable crio_default_capabilities: 'NET_RAW\", \"SYS_ADMIN' is not a capability name: only "
        "upper-case letters and '_' ([A-Z_]+), one Linux capability per list entry",
        "host w2: variable crio_default_capabilities: ['CHOWN', 'NET_RAW\", \"SYS_ADMIN'] lacks NET_RAW, which the "
        "verify stage needs (ping from the pods; verify_required_capability)",
    ]


def test_the_python_overrides_network_limits_and_join_arguments_are_checked(tmp_path):
    # the same rules as preflight's first play: the per-host interpreter, the
    # per-OS candidates (a misspelt key), kubeadm's pod network limit, --config
    inv = make_inventory(tmp_path, files={
        "host_vars/w1.yml": "preflight_python_interpreter: python3\n",
        "group_vars/all.yml": "preflight_python_by_os:\n  RedHat-8: {candidate: [/opt/py/bin/python3], package: py3}\n"
                              "kubelab_pod_network_cidr: 10.244.0.0/25\n",
        "group_vars/workers.yml": "workers_join_extra_args: [--config=/etc/kubeadm/join.yaml]\n",
    })
    code, out, _err = check(inv)
    assert code == 1
    assert problems_of(out) == [
        "variable kubelab_pod_network_cidr: '10.244.0.0/25' is smaller than one node's pod range: the controller "
        "manager gives every node a /24 and kubeadm refuses it (\"the size of pod subnet with mask 25 is smaller than "
        "the size of node subnet with mask 24\"); use /24 or larger, for example /16",
        "variable preflight_python_by_os: [RedHat-8] unknown key 'candidate' (value ['/opt/py/bin/python3']); did you "
        "mean candidates?",
        "host w1: variable preflight_python_interpreter: 'python3' is not an absolute path to an interpreter (for "
        "example /usr/bin/python3.11), or empty to let preflight choose from the node's OS",
        "host w1, w2: variable workers_join_extra_args: '--config=/etc/kubeadm/join.yaml': kubelab joins with flags "
        "(--token, --discovery-token-ca-cert-hash, --cri-socket) and kubeadm refuses --config with them (\"can not "
        "mix '--config' with arguments [cri-socket discovery-token-ca-cert-hash token]\"); remove --config",
    ]


def test_the_lab_inventory_is_valid():
    code, out, _err = check(ROOT / "inventory" / "lab" / "hosts.yml")
    assert code == 0, out
    assert out.endswith("no problems found.\n")
    code, out, _err = check(ROOT / "inventory" / "lab")
    assert code == 0, out


def test_unreadable_inventory_is_one_sentence(tmp_path):
    bad = tmp_path / "hosts.yml"
    bad.write_text("all:\n  hosts: [unclosed\n")
    code, _out, err = check(bad)
    assert code == 1
    assert err.startswith(f"kubelab: error: Ansible cannot read the inventory {bad}: {bad} line 3: not valid YAML")
    assert len(err.strip().splitlines()) == 1


def test_a_tab_in_the_indentation_is_named_with_its_line(tmp_path):
    bad = tmp_path / "hosts.yml"
    bad.write_text("all:\n  children:\n    workers:\n      hosts:\n\tw1:\n")
    code, _out, err = check(bad)
    assert code == 1
    assert err == (f"kubelab: error: Ansible cannot read the inventory {bad}: {bad} line 5: a TAB in the "
                   "indentation; YAML indents with spaces only\n")


def test_an_empty_host_name_is_named_as_such(tmp_path):
    # Ansible's first complaint is the 'auto' plugin's "no root 'plugin' key found"
    inv = make_inventory(tmp_path, HOSTS + '        "":\n          kubelab_node_ip: 192.0.2.13\n')
    code, _out, err = check(inv)
    assert code == 1
    assert err == (f"kubelab: error: Ansible cannot read the inventory {inv}: {inv / 'hosts.yml'} line 10: group "
                   "'workers' has a host with an empty name; give every host a name\n")


def test_a_tab_inside_a_quoted_host_name_reaches_the_validation(tmp_path):
    inv = make_inventory(tmp_path, HOSTS + '        "w3\\t": {kubelab_node_ip: 192.0.2.13}\n')
    code, out, _err = check(inv)
    assert code == 1
    assert problems_of(out) == [
        "inventory: group 'workers' has a host with a TAB in its name 'w3\\t' (an indentation TAB pasted into the "
        "name?); give every host a plain name (indent YAML with spaces, never TABs)"]


def test_a_controller_variable_set_for_a_host_only(tmp_path):
    inv = make_inventory(tmp_path, files={"host_vars/w1.yml": "workloads_external_ips: [192.0.2.11]\n"})
    code, out, _err = check(inv)
    assert code == 1
    assert problems_of(out) == [
        "host w1: variable workloads_external_ips: ['192.0.2.11'] is set for this host, but the workloads stage "
        "runs on the controller (localhost), which uses the role default; set it where localhost sees it "
        "(group_vars/all or -e)"]


def test_yaml_file_problems_walks_children(tmp_path):
    path = tmp_path / "hosts.yml"
    path.write_text("all:\n  children:\n    k8s:\n      children:\n        workers:\n          hosts:\n"
                    "            ? \n            w1:\n")
    assert yaml_file_problems(path) == [
        f"{path} line 7: group 'workers' has a host with an empty name; give every host a name"]


def test_groups_are_flattened_through_children():
    data = {
        "_meta": {"hostvars": {"a": {"kubelab_node_ip": "192.0.2.1", "kubelab_x": "{{ y }}", "other": 1,
                                     "crio_default_capabilities": ["CHOWN", "{{ extra }}"]},
                               "b": {"workloads_namespace": "test"}}},
        "all": {"children": ["ungrouped", "k8s"]},
        "k8s": {"children": ["control_plane", "workers"]},
        "control_plane": {"hosts": ["a"]},
        "workers": {"hosts": ["b"]},
    }
    groups = flatten_groups(data)
    assert groups["all"] == ["a", "b"] and groups["k8s"] == ["a", "b"] and groups["workers"] == ["b"]
    _groups, hostvars, settings = validator_input(data, {"verify_namespace": "test", "ansible_connection": "local"})
    # templated values are left out (only a playbook run can render them)
    assert hostvars == {"a": {"kubelab_node_ip": "192.0.2.1"}, "b": {"workloads_namespace": "test"}}
    assert settings == {"verify_namespace": "test"}
