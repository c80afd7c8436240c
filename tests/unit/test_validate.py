"""Validation of kubelab's whole input: inventory and variables in, one-line
problems out (module_utils/kubelab_validate.py).

Each bad input must produce exactly the messages that name the host(s), the
variable, the value and what is allowed; the good input (and every role
default) must produce none. The roles' real argument specs and defaults are
loaded from roles/, as the playbook and `kubelab inventory check` load them.
The module is also driven through AnsibleModule to check that it fails with
every message at once and never reports a change.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest
import yaml
from ansible.module_utils.kubelab_validate import (
    LINUX_CAPABILITIES,
    ROLE_PREFIXES,
    SUPPORTED_KUBERNETES_MINORS,
    VARIABLE_PATTERN,
    cgroup_plan,
    image_reference_problem,
    known_options,
    load_roles,
    platform_from_os_release,
    role_defaults,
    validate,
)
from ansible.module_utils.testing import patch_module_args

import kubelab_validate as validate_module

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
ROLES = load_roles(str(ROOT / "roles"))

ROCKY8 = 'NAME="Rocky Linux"\nVERSION="8.10 (Green Obsidian)"\nID="rocky"\nID_LIKE="rhel centos fedora"\nVERSION_ID="8.10"\n'
CENTOS8 = 'NAME="CentOS Linux"\nVERSION="8"\nID="centos"\nID_LIKE="rhel fedora"\nVERSION_ID="8"\n'
ALMA9 = 'NAME="AlmaLinux"\nID="almalinux"\nID_LIKE="rhel centos fedora"\nVERSION_ID="9.4"\n'
DEBIAN12 = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n'
DEBIAN11 = 'ID=debian\nVERSION_ID="11"\n'
UBUNTU = 'ID=ubuntu\nID_LIKE=debian\nVERSION_ID="24.04"\n'
CENTOS7 = 'ID="centos"\nID_LIKE="rhel fedora"\nVERSION_ID="7"\n'

WRITEUP_CAPS = ["CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "SETGID", "SETUID",
                "SETPCAP", "NET_BIND_SERVICE", "KILL", "NET_RAW"]
SERVICES = [
    {"name": "nginx-svc", "type": "ClusterIP", "port": 80, "port_name": "http"},
    {"name": "nginx-svc-lb", "type": "LoadBalancer", "port": 8080, "target_port": 80, "protocol": "TCP"},
    {"name": "nginx-svc-np", "type": "NodePort", "port": 8081, "target_port": 80, "node_port": 30081},
]


def good():
    """A valid lab: one control plane, two workers, settings of every stage set
    (as group_vars/all: the controller and every host see them)."""
    return {
        "groups": {"all": ["cp1", "w1", "w2"], "control_plane": ["cp1"], "workers": ["w1", "w2"],
                   "ungrouped": []},
        "hostvars": {"cp1": {"kubelab_node_ip": "192.168.251.10"},
                     "w1": {"kubelab_node_ip": "192.168.251.11"},
                     "w2": {"kubelab_node_ip": "192.168.251.12"}},
        "settings": {
            "kubelab_kubernetes_version": "1.35",
            "kubelab_control_plane_group": "control_plane",
            "kubelab_workers_group": "workers",
            "kubelab_pod_network_cidr": "10.244.0.0/16",
            "kubelab_service_cidr": "10.96.0.0/12",
            "kubelab_cluster_dns": "10.96.0.10",
            "crio_default_capabilities": list(WRITEUP_CAPS),
            "crio_capabilities_dropin": "default_capabilities.conf",
            "crio_repo_base_url": "file:///srv/kubelab-standins/cri-o/v1.35",
            "preflight_cgroup_v1_policy": "tolerate",
            "preflight_allow_reboot": False,
            "node_prep_selinux_mode": "permissive",
            "node_prep_firewalld_control_plane_ports": ["6443/tcp", "2379-2380/tcp"],
            "node_prep_firewalld_worker_ports": ["10250/tcp", "30000-32767/tcp"],
            "control_plane_api_port": 6443,
            "workers_token_ttl": "15m",
            "workloads_namespace": "test",
            "workloads_nginx_replicas": 2,
            "workloads_nginx_image": "docker.io/library/nginx:stable-alpine3.17-slim",
            "workloads_services": copy.deepcopy(SERVICES),
            "workloads_external_ips": ["192.168.251.11", "192.168.251.12"],
            "workloads_wait": False,
            "verify_data_plane": True,
            "verify_body_pattern": "Welcome to nginx!",
            "verify_http_timeout": 0.5,
        },
        "platforms": {"cp1": {"os_release": ROCKY8}, "w1": {"os_release": CENTOS8},
                      "w2": {"os_release": DEBIAN12}},
    }


def run(data, roles=ROLES):
    return validate(data["groups"], data["hostvars"], data["settings"], data["platforms"], roles=roles)


def test_good_inventory_has_no_problem():
    assert run(good()) == []


def test_every_role_default_is_valid():
    # the defaults as settings, as if a user had written every one of them out
    data = good()
    data["settings"] = role_defaults(ROLES)
    assert data["settings"]["crio_default_capabilities"][-1] == "NET_RAW"
    assert run(data) == []


def test_no_workers_is_valid():
    data = good()
    data["groups"]["workers"] = []
    data["groups"]["all"] = ["cp1"]
    del data["hostvars"]["w1"], data["hostvars"]["w2"]
    assert run(data) == []


def test_writeup_capabilities_are_linux_capabilities():
    assert set(WRITEUP_CAPS) <= LINUX_CAPABILITIES
    assert len(LINUX_CAPABILITIES) == 41  # CAP_CHOWN (0) .. CAP_CHECKPOINT_RESTORE (40)


def test_the_roles_specs_are_loaded():
    options = known_options(ROLES)
    assert sorted(ROLES) == sorted(ROLE_PREFIXES)
    for name in ("crio_default_capabilities", "workloads_services", "verify_body_pattern", "reset_node",
                 "verify_crio_source", "control_plane_api_port", "preflight_cgroup_v1_policy"):
        assert name in options, name
    assert options["workloads_services"][0] == "workloads"
    assert options["workloads_services"][1]["options"]["type"]["choices"] == ["ClusterIP", "NodePort", "LoadBalancer"]


def test_the_preflight_role_selects_the_same_variable_names():
    # roles/preflight/vars/main.yml picks the variables out of hostvars with a
    # regex of its own (Jinja cannot import Python): it must be this one, and
    # every role directory of the project must be covered.
    role_vars = yaml.safe_load((ROOT / "roles" / "preflight" / "vars" / "main.yml").read_text())
    assert role_vars["__preflight_variable_pattern"] == VARIABLE_PATTERN
    on_disk = sorted(p.parent.parent.name for p in (ROOT / "roles").glob("*/meta/argument_specs.yml"))
    assert on_disk == sorted(ROLE_PREFIXES)


def _set(path, value):
    def mutate(data):
        target = data
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return mutate


def _del(path):
    def mutate(data):
        target = data
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]
    return mutate


def _setting(name, value):
    return _set(("settings", name), value)


def _service(index, key, value):
    def mutate(data):
        data["settings"]["workloads_services"][index][key] = value
    return mutate


def _no_control_plane(keep_group):
    def mutate(data):
        if keep_group:
            data["groups"]["control_plane"] = []
        else:
            del data["groups"]["control_plane"]
        data["groups"]["all"].remove("cp1")
        del data["hostvars"]["cp1"], data["platforms"]["cp1"]
    return mutate


def _rename(old, new):
    def mutate(data):
        for hosts in data["groups"].values():
            hosts[:] = [new if h == old else h for h in hosts]
        data["hostvars"][new] = data["hostvars"].pop(old)
        data["platforms"][new] = data["platforms"].pop(old)
    return mutate


def _big_service_network(data):
    data["settings"]["kubelab_service_cidr"] = "172.0.0.0/10"
    data["settings"]["kubelab_cluster_dns"] = "172.0.0.10"


def _service_network(cidr, dns):
    def mutate(data):
        data["settings"]["kubelab_service_cidr"] = cidr
        data["settings"]["kubelab_cluster_dns"] = dns
    return mutate


def _both(data):
    data["groups"]["workers"] = ["cp1", "w1", "w2"]


def _add_host(group, name):
    def mutate(data):
        data["groups"].setdefault(group, []).append(name)
        data["groups"]["all"].append(name)
    return mutate


def _overlap(data):
    data["settings"]["kubelab_service_cidr"] = "10.244.128.0/17"
    data["settings"]["kubelab_cluster_dns"] = "10.244.128.10"


def _on_host(host, name, value):
    return _set(("hostvars", host, name), value)


CAPS_RULE = "only upper-case letters and '_' ([A-Z_]+), one Linux capability per list entry"
LACKS = "lacks NET_RAW, which the verify stage needs (ping from the pods; verify_required_capability)"
V_FORM = "is not of the form 1.NN (for example \"1.35\"); quote it in YAML so 1.30 does not become 1.3"

BAD = [
    # --- the inventory's shape
    ("no-control-plane", _no_control_plane(keep_group=True),
     "inventory: group 'control_plane' has no host; exactly one control-plane host is required"),
    ("missing-control-plane-group", _no_control_plane(keep_group=False),
     "inventory: group 'control_plane' has no host; exactly one control-plane host is required"),
    ("two-control-planes", _set(("groups", "control_plane"), ["cp1", "cp2"]),
     "inventory: group 'control_plane' has 2 hosts (cp1, cp2); exactly one control-plane host is required"),
    ("host-in-both-groups", _both,
     "host cp1: in both groups 'control_plane' and 'workers'; a node is either the control plane or a worker"),
    ("host-in-no-group", _add_host("ungrouped", "db1"),
     "host db1: in neither group 'control_plane' nor 'workers'; site.yml prepares every inventory host as a node "
     "(hosts: all): put it in one of them or remove it"),
    ("empty-host-name", _add_host("workers", ""),
     "inventory: group 'workers' has a host with an empty name; give every host a plain name "
     "(indent YAML with spaces, never TABs)"),
    ("tab-in-host-name", _add_host("workers", "w3\t"),
     "inventory: group 'workers' has a host with a TAB in its name 'w3\\t' (an indentation TAB pasted into the "
     "name?); give every host a plain name (indent YAML with spaces, never TABs)"),
    ("bad-node-name", _rename("w2", "Worker_2"),
     "host Worker_2: not a valid Kubernetes node name (lowercase RFC 1123: letters, digits, '-' and '.')"),
    ("duplicate-address", _on_host("w2", "kubelab_node_ip", "192.168.251.11"),
     "host w2: kubelab_node_ip 192.168.251.11 is already used by host w1; node addresses must be unique"),
    ("invalid-address", _on_host("w1", "kubelab_node_ip", "192.168.251.300"),
     "host w1: variable kubelab_node_ip: '192.168.251.300' is not an IP address"),
    ("loopback-address", _on_host("w1", "kubelab_node_ip", "127.0.0.2"),
     "host w1: variable kubelab_node_ip: '127.0.0.2' cannot be a node address: it is in the loopback range "
     "(127.0.0.0/8, ::1/128)"),
    ("address-in-pod-network", _on_host("w1", "kubelab_node_ip", "10.244.3.7"),
     "host w1: variable kubelab_node_ip: 10.244.3.7 is inside kubelab_pod_network_cidr 10.244.0.0/16"),
    # --- Kubernetes versions
    ("version-float", _setting("kubelab_kubernetes_version", 1.3),
     "variable kubelab_kubernetes_version: 1.3 " + V_FORM),
    ("version-patch", _setting("kubelab_kubernetes_version", "1.35.0"),
     "variable kubelab_kubernetes_version: '1.35.0' " + V_FORM),
    ("version-v-prefix", _setting("kubelab_kubernetes_version", "v1.35"),
     "variable kubelab_kubernetes_version: 'v1.35' " + V_FORM),
    ("version-unsupported", _setting("kubelab_kubernetes_version", "1.30"),
     "variable kubelab_kubernetes_version: '1.30' is a Kubernetes release this kubelab does not support; "
     "supported: 1.34, 1.35"),
    ("version-nonexistent", _setting("kubelab_kubernetes_version", "1.99"),
     "variable kubelab_kubernetes_version: '1.99' is not a Kubernetes release (the newest minor kubelab knows of "
     "is 1.37); supported: 1.34, 1.35"),
    ("crio-version-skew", _setting("crio_version", "1.34"),
     "variable crio_version: '1.34' differs from kubelab_kubernetes_version 1.35; CRI-O must be the same minor "
     "version"),
    ("packages-version-skew", _setting("kube_packages_version", "1.34"),
     "variable kube_packages_version: '1.34' differs from kubelab_kubernetes_version 1.35; kubelet, kubeadm and "
     "kubectl must be the same minor version"),
    ("version-differs-per-host", _on_host("w2", "kubelab_kubernetes_version", "1.34"),
     "variable kubelab_kubernetes_version differs between hosts ('1.35' on localhost, cp1, w1; '1.34' on w2); "
     "it is cluster-wide: set it once, in group_vars/all"),
    # --- CRI-O capabilities
    ("unknown-capability", _setting("crio_default_capabilities", WRITEUP_CAPS + ["NET_PING"]),
     "variable crio_default_capabilities: 'NET_PING' is not a Linux capability (capability.h names CHOWN .. "
     "CHECKPOINT_RESTORE)"),
    ("misspelt-capability", _setting("crio_default_capabilities", WRITEUP_CAPS + ["SYS_CHROT"]),
     "variable crio_default_capabilities: 'SYS_CHROT' is not a Linux capability (capability.h names CHOWN .. "
     "CHECKPOINT_RESTORE); did you mean SYS_CHROOT?"),
    ("lowercase-capability", _setting("crio_default_capabilities", ["chown", "NET_RAW"]),
     "variable crio_default_capabilities: 'chown' is not a capability name: " + CAPS_RULE
     + " (capability names are upper case: CHOWN)"),
    ("cap-prefix", _setting("crio_default_capabilities", ["CHOWN", "CAP_NET_RAW", "NET_RAW"]),
     "variable crio_default_capabilities: 'CAP_NET_RAW': write capability names without the CAP_ prefix, "
     "as CRI-O does (NET_RAW)"),
    ("duplicate-capability", _setting("crio_default_capabilities", ["NET_RAW", "CHOWN", "NET_RAW"]),
     "variable crio_default_capabilities: 'NET_RAW' is listed twice"),
    ("capabilities-not-list", _setting("crio_default_capabilities", "CHOWN,NET_RAW"),
     "variable crio_default_capabilities: 'CHOWN,NET_RAW' is not a list (the crio role's argument spec: a list)"),
    ("capabilities-empty", _setting("crio_default_capabilities", []),
     "variable crio_default_capabilities: the list is empty; give the complete list "
     "(a drop-in replaces CRI-O's whole default)"),
    ("capabilities-without-net-raw", _setting("crio_default_capabilities", WRITEUP_CAPS[:-1]),
     "variable crio_default_capabilities: %r " % (WRITEUP_CAPS[:-1],) + LACKS),
    # issue 14: a host_var whose quotes would have been pasted into the TOML drop-in
    ("capability-injection-on-one-host", _on_host("w1", "crio_default_capabilities",
                                                  ["CHOWN", "NET_RAW\", \"SYS_ADMIN"]),
     ["host w1: variable crio_default_capabilities: 'NET_RAW\", \"SYS_ADMIN' is not a capability name: " + CAPS_RULE,
      "host w1: variable crio_default_capabilities: ['CHOWN', 'NET_RAW\", \"SYS_ADMIN'] " + LACKS]),
    ("capability-element-not-string", _setting("crio_default_capabilities", ["CHOWN", ["NET_RAW"]]),
     ["variable crio_default_capabilities[1]: ['NET_RAW'] is not a string (the crio role's argument spec: "
      "a list of strings)",
      "variable crio_default_capabilities: ['NET_RAW'] is not a capability name",
      "variable crio_default_capabilities: ['CHOWN', ['NET_RAW']] " + LACKS]),
    ("required-capability-unknown", _setting("verify_required_capability", "PING"),
     "variable verify_required_capability: 'PING' is not a Linux capability name (without CAP_, for example "
     "NET_RAW)"),
    ("dropin-not-conf", _setting("crio_capabilities_dropin", "caps.toml"),
     "variable crio_capabilities_dropin: 'caps.toml' must be a plain file name ending in .conf "
     "(a file directly in /etc/crio/crio.conf.d)"),
    ("dropin-path", _setting("crio_capabilities_dropin", "../crio.conf"),
     "variable crio_capabilities_dropin: '../crio.conf' must be a plain file name ending in .conf "
     "(a file directly in /etc/crio/crio.conf.d)"),
    ("crio-status-timeout-zero", _setting("crio_status_timeout", 0),
     "variable crio_status_timeout: 0 is out of range (allowed: above 0)"),
    ("repo-url", _setting("crio_repo_base_url", "download.opensuse.org/repositories/isv:/cri-o"),
     "variable crio_repo_base_url: 'download.opensuse.org/repositories/isv:/cri-o' is not a URL "
     "(http://, https:// or file://)"),
    # --- misspelt variables
    ("typo-crio", _on_host("w2", "crio_default_capabilites", ["CHOWN", "NET_RAW"]),
     "host w2: variable crio_default_capabilites (value ['CHOWN', 'NET_RAW']): no kubelab role has this "
     "variable, likely a typo; did you mean crio_default_capabilities?"),
    ("typo-workloads", _setting("workloads_nginx_replica", 3),
     "variable workloads_nginx_replica (value 3): no kubelab role has this variable, likely a typo; "
     "did you mean workloads_nginx_replicas?"),
    ("unknown-prefixed-variable", _setting("node_prep_foo", True),
     "variable node_prep_foo (value True): no kubelab role has this variable, likely a typo; "
     "see roles/node_prep/meta/argument_specs.yml"),
    # --- networks
    ("networks-overlap", _overlap,
     "variables kubelab_pod_network_cidr 10.244.0.0/16 and kubelab_service_cidr 10.244.128.0/17 overlap"),
    ("cidr-host-bits", _setting("kubelab_pod_network_cidr", "10.244.1.0/16"),
     "variable kubelab_pod_network_cidr: '10.244.1.0/16' is not a network address in CIDR form "
     "(10.244.1.0/16 has host bits set)"),
    ("service-range-too-large", _big_service_network,
     "variable kubelab_service_cidr: '172.0.0.0/10' is too large for the API server's service range "
     "(at most 20 host bits: /12 or longer)"),
    ("dns-outside-services", _setting("kubelab_cluster_dns", "10.244.0.10"),
     "variable kubelab_cluster_dns: 10.244.0.10 is outside kubelab_service_cidr 10.96.0.0/12"),
    ("dns-first-service-address", _setting("kubelab_cluster_dns", "10.96.0.1"),
     "variable kubelab_cluster_dns: 10.96.0.1 is the first address of kubelab_service_cidr 10.96.0.0/12; the API "
     "server keeps it (the kubernetes Service takes the first address), use for example 10.96.0.10"),
    ("cluster-domain", _setting("kubelab_cluster_domain", "Cluster.Local"),
     "variable kubelab_cluster_domain: 'Cluster.Local' is not a DNS domain (lower-case RFC 1123 labels "
     "separated by '.')"),
    ("cri-socket", _setting("kubelab_cri_socket", "/var/run/crio/crio.sock"),
     "variable kubelab_cri_socket: '/var/run/crio/crio.sock' is not a CRI endpoint of the form "
     "unix:///path/to/socket"),
    # kubeadm's networking limits (validation.go ValidatePodSubnetNodeMask, ValidateIPNetFromString;
    # the controller manager's default node mask /24, /64 for IPv6)
    ("pod-network-smaller-than-a-node", _setting("kubelab_pod_network_cidr", "10.244.0.0/25"),
     "variable kubelab_pod_network_cidr: '10.244.0.0/25' is smaller than one node's pod range: the controller "
     "manager gives every node a /24 and kubeadm refuses it (\"the size of pod subnet with mask 25 is smaller than "
     "the size of node subnet with mask 24\"); use /24 or larger, for example /16"),
    ("pod-network-ipv6-smaller-than-a-node", _setting("kubelab_pod_network_cidr", "fd00:10:244::/72"),
     "variable kubelab_pod_network_cidr: 'fd00:10:244::/72' is smaller than one node's pod range: the controller "
     "manager gives every node a /64 and kubeadm refuses it (\"the size of pod subnet with mask 72 is smaller than "
     "the size of node subnet with mask 64\"); use /64 or larger, for example /56"),
    ("pod-network-too-large", _setting("kubelab_pod_network_cidr", "16.0.0.0/7"),
     "variable kubelab_pod_network_cidr: '16.0.0.0/7' is too large: kubeadm refuses it (\"pod subnet mask (7) and "
     "node-mask (24) difference is greater than 16\"); use /8 or longer"),
    ("pod-network-without-room-for-every-node", _setting("kubelab_pod_network_cidr", "10.244.0.0/23"),
     "variable kubelab_pod_network_cidr: '10.244.0.0/23' holds 2 node range(s) of /24 but the inventory has 3 "
     "nodes: the controller manager gives every node its own /24 and a node without one gets no pod network "
     "(\"CIDR allocation failed; there are no remaining CIDRs left to allocate in the accepted range\"); use /22 "
     "or larger"),
    ("service-network-too-small", _service_network("10.96.0.0/29", "10.96.0.5"),
     "variable kubelab_service_cidr: '10.96.0.0/29' is too small: kubeadm refuses it (\"subnet with 8 address(es) "
     "is too small, the minimum is 10\"; the DNS Service takes the tenth address); use /28 or larger"),
    # --- preflight, node_prep
    ("python-interpreter-relative", _on_host("w1", "preflight_python_interpreter", "python3"),
     "host w1: variable preflight_python_interpreter: 'python3' is not an absolute path to an interpreter (for "
     "example /usr/bin/python3.11), or empty to let preflight choose from the node's OS"),
    ("python-by-os-misspelt-key", _setting("preflight_python_by_os",
                                           {"RedHat-8": {"candidate": ["/opt/py/bin/python3"], "package": "py3"}}),
     "variable preflight_python_by_os: [RedHat-8] unknown key 'candidate' (value ['/opt/py/bin/python3']); did you "
     "mean candidates?"),
    ("python-by-os-unknown-sub-key", _setting("preflight_python_by_os",
                                              {"Debian": {"candidates": ["/usr/bin/python3"], "installer": "apt"}}),
     "variable preflight_python_by_os: [Debian] unknown key 'installer' (value 'apt'); known keys: candidates, "
     "package"),
    ("python-by-os-relative-candidate", _setting("preflight_python_by_os",
                                                 {"Rocky-8": {"candidates": ["python3.11", "/usr/bin/python3.12"]}}),
     "variable preflight_python_by_os: [Rocky-8] candidates: 'python3.11' is not an absolute path to an interpreter "
     "(for example /usr/bin/python3.11)"),
    ("python-by-os-candidates-not-list", _setting("preflight_python_by_os",
                                                  {"RedHat-9": {"candidates": "/usr/bin/python3"}}),
     "variable preflight_python_by_os: [RedHat-9] candidates '/usr/bin/python3' is not a list of interpreter paths"),
    ("python-by-os-bad-package", _setting("preflight_python_by_os",
                                          {"RedHat-8": {"candidates": ["/usr/bin/python3.11"],
                                                        "package": "python 3.11"}}),
     "variable preflight_python_by_os: [RedHat-8] package 'python 3.11' is not a package name (the package that "
     "provides the first candidate)"),
    ("python-by-os-unknown-os-key", _setting("preflight_python_by_os",
                                             {"Rocky8": {"candidates": ["/usr/bin/python3.11"]}}),
     "variable preflight_python_by_os: key 'Rocky8' is not an OS key preflight looks up (Distribution-MAJOR, "
     "Family-MAJOR or Family of a supported OS); did you mean Rocky-8?"),
    ("python-by-os-entry-not-mapping", _setting("preflight_python_by_os", {"RedHat-8": "/usr/bin/python3.11"}),
     "variable preflight_python_by_os: [RedHat-8] '/usr/bin/python3.11' is not a mapping with candidates (a list "
     "of interpreter paths) and package"),
    ("python-by-os-on-one-host", _on_host("w2", "preflight_python_by_os", {"Debian": {"candidates": ["/opt/py3"]}}),
     "variable preflight_python_by_os differs between hosts ({} on localhost, cp1, w1; {'Debian': {'candidates': "
     "['/opt/py3']}} on w2); it is cluster-wide: set it once, in group_vars/all"),
    ("bad-cgroup-policy", _setting("preflight_cgroup_v1_policy", "ignore"),
     "variable preflight_cgroup_v1_policy: 'ignore' is not one of tolerate, migrate"),
    ("migrate-without-reboot", _setting("preflight_cgroup_v1_policy", "migrate"),
     "variable preflight_cgroup_v1_policy: 'migrate' reboots cgroup v1 nodes; set preflight_allow_reboot: true "
     "to allow it, or use 'tolerate'"),
    ("reboot-not-bool", _setting("preflight_allow_reboot", "sure"),
     "variable preflight_allow_reboot: 'sure' is not true or false (the preflight role's argument spec: "
     "true or false)"),
    ("reboot-timeout-zero", _setting("preflight_reboot_timeout", 0),
     "variable preflight_reboot_timeout: 0 is out of range (allowed: above 0)"),
    ("gather-subset-without-network", _setting("preflight_gather_subset", ["!all", "distribution", "pkg_mgr",
                                                                          "service_mgr", "python", "platform"]),
     "variable preflight_gather_subset: ['!all', 'distribution', 'pkg_mgr', 'service_mgr', 'python', 'platform'] "
     "lacks network; later stages read the facts of distribution, pkg_mgr, service_mgr, python, platform, network"),
    ("bad-selinux-mode", _setting("node_prep_selinux_mode", "permisive"),
     "variable node_prep_selinux_mode: 'permisive' is not one of enforcing, permissive, disabled"),
    ("bad-port", _setting("node_prep_firewalld_worker_ports", ["10250/tcp", "32767-30000/tcp"]),
     "variable node_prep_firewalld_worker_ports: '32767-30000/tcp' is not PORT/PROTO or LOW-HIGH/PROTO "
     "(tcp, udp, sctp; ports 1-65535, LOW <= HIGH)"),
    ("sysctl-name", _setting("node_prep_sysctls", {"net.ipv4.ip_forward": 1, "ip forward": 1}),
     "variable node_prep_sysctls: key 'ip forward' is not a sysctl name (for example net.ipv4.ip_forward)"),
    # --- control_plane, workers
    ("api-port", _setting("control_plane_api_port", 70000),
     "variable control_plane_api_port: 70000 is not a port (1-65535)"),
    ("cert-san", _setting("control_plane_cert_sans", ["api.example.com", "bad_name!"]),
     "variable control_plane_cert_sans: 'bad_name!' is neither an IP address nor a DNS name"),
    ("ignore-preflight-two-in-one", _setting("control_plane_ignore_preflight_errors", ["all", "Swap,Mem"]),
     "variable control_plane_ignore_preflight_errors: 'Swap,Mem' is not one preflight check name (allowed: a name "
     "like NumCPU, Mem, Swap or SystemVerification, or all; no ',', white space or control characters: one name "
     "per list entry)"),
    # kubeadm ValidateMixedArguments: "can not mix '--config' with arguments [...]"
    ("join-config-with-kubelab-s-flags", _setting("workers_join_extra_args", ["--config", "/etc/kubeadm/join.yaml"]),
     "variable workers_join_extra_args: '--config /etc/kubeadm/join.yaml': kubelab joins with flags (--token, "
     "--discovery-token-ca-cert-hash, --cri-socket) and kubeadm refuses --config with them (\"can not mix "
     "'--config' with arguments [cri-socket discovery-token-ca-cert-hash token]\"); remove --config"),
    ("join-config-with-more-flags", _setting("workers_join_extra_args", ["--v=5", "--config=/j.yaml",
                                                                         "--apiserver-advertise-address=10.0.0.1"]),
     "variable workers_join_extra_args: '--config=/j.yaml': kubelab joins with flags (--token, "
     "--discovery-token-ca-cert-hash, --cri-socket) and kubeadm refuses --config with them (\"can not mix "
     "'--config' with arguments [apiserver-advertise-address cri-socket discovery-token-ca-cert-hash token]\"); "
     "remove --config"),
    ("join-flags-kubelab-passes", _setting("workers_join_extra_args", [
        "--token=abcdef.0123456789abcdef", "--discovery-token-ca-cert-hash", "sha256:" + "a" * 64,
        "--cri-socket=unix:///run/containerd/containerd.sock", "--node-name", "w1", "--v=5",
        "--ignore-preflight-errors=Swap"]),
     ["variable workers_join_extra_args: " + shown + ": " + why + "; remove it" for shown, why in (
         ("'--token ...'", "kubelab passes --token itself (a short-lived bootstrap token)"),
         ("'--discovery-token-ca-cert-hash sha256:%s'" % ("a" * 64),
          "kubelab passes it itself (the hash of the CA it reads on the control plane)"),
         ("'--cri-socket=unix:///run/containerd/containerd.sock'",
          "kubelab passes --cri-socket itself (kubelab_cri_socket)"),
         ("'--node-name w1'", "the worker's node name is workers_node_name; set that instead"),
         ("'--ignore-preflight-errors=Swap'", "kubelab passes it itself when checks are to be ignored; put the checks "
                                              "in workers_ignore_preflight_errors (merged with preflight's plan into "
                                              "one flag)"))]),
    ("token-ttl", _setting("workers_token_ttl", "15 minutes"),
     "variable workers_token_ttl: '15 minutes' is not a duration like 15m, 1h30m or 10m0s (Go's "
     "time.ParseDuration)"),
    ("ready-timeout-type", _setting("workers_ready_timeout", "soon"),
     "variable workers_ready_timeout: 'soon' is not a whole number (the workers role's argument spec: "
     "a whole number)"),
    # --- workloads
    ("external-ip-syntax", _setting("workloads_external_ips", ["192.168.251.11", "10.20.2.x"]),
     "variable workloads_external_ips: '10.20.2.x' is not an IP address (externalIPs are IPv4 or IPv6 addresses: "
     "no names, no /prefix)"),
    ("external-ip-cidr", _setting("workloads_external_ips", ["192.168.251.0/24"]),
     "variable workloads_external_ips: '192.168.251.0/24' is not an IP address (externalIPs are IPv4 or IPv6 "
     "addresses: no names, no /prefix)"),
    ("external-ip-loopback", _setting("workloads_external_ips", ["127.0.0.1"]),
     "variable workloads_external_ips: '127.0.0.1' cannot be an externalIP: Kubernetes refuses addresses in the "
     "loopback range (127.0.0.0/8, ::1/128)"),
    ("external-ip-in-service-network", _setting("workloads_external_ips", ["10.96.5.5"]),
     "variable workloads_external_ips: 10.96.5.5 is inside kubelab_service_cidr 10.96.0.0/12; externalIPs must "
     "reach a node from outside the cluster"),
    ("node-port-outside-range", _service(2, "node_port", 8080),
     "variable workloads_services: [2] (nginx-svc-np) node_port 8080 is outside the nodePort range 30000-32767 "
     "(workloads_node_port_range)"),
    ("node-port-twice", _service(1, "node_port", 30081),
     "variable workloads_services: [2] (nginx-svc-np) node_port 30081 is already used by nginx-svc-lb; nodePorts "
     "must be unique"),
    ("node-port-on-cluster-ip", _service(0, "node_port", 30080),
     "variable workloads_services: [0] (nginx-svc) node_port 30080 is set on a ClusterIP Service; only NodePort "
     "and LoadBalancer Services have one"),
    ("node-port-range-beyond-apiserver", _setting("workloads_node_port_range", [30000, 40000]),
     "variable workloads_node_port_range: [30000, 40000] is outside 30000-32767, the API server's "
     "--service-node-port-range (kubelab does not change it)"),
    ("service-type", _service(0, "type", "External"),
     "variable workloads_services[0].type: 'External' is not one of ClusterIP, NodePort, LoadBalancer"),
    ("service-without-port", _del(("settings", "workloads_services", 0, "port")),
     "variable workloads_services[0]: key port is missing (required by the workloads role's argument spec)"),
    ("service-misspelt-key", _service(1, "targetPort", 80),
     "variable workloads_services[1]: unknown key 'targetPort' (value 80); did you mean target_port?"),
    ("service-name", _service(0, "name", "Nginx_svc"),
     "variable workloads_services: [0] (Nginx_svc) name 'Nginx_svc' is not a Service name (RFC 1035 label: "
     "a lower-case letter, then a-z, 0-9 and '-', at most 63)"),
    ("service-name-twice", _service(1, "name", "nginx-svc"),
     "variable workloads_services: [1] (nginx-svc) name 'nginx-svc' is used twice (entries 0 and 1)"),
    ("image-with-space", _setting("workloads_nginx_image", "nginx:stable alpine"),
     "variable workloads_nginx_image: 'nginx:stable alpine' is not an image reference "
     "([registry[:port]/]name[:tag][@sha256:digest])"),
    ("image-upper-case", _setting("workloads_busybox_image", "docker.io/Library/BusyBox"),
     "variable workloads_busybox_image: 'docker.io/Library/BusyBox' is not an image reference (repository names "
     "are lower case)"),
    ("nginx-one-replica", _setting("workloads_nginx_replicas", 1),
     "variable workloads_nginx_replicas: 1: the verify stage's spread check needs at least 2 nginx pods "
     "(or verify_data_plane: false)"),
    ("busybox-zero-replicas", _setting("workloads_busybox_replicas", 0),
     "variable workloads_busybox_replicas: 0 is not a replica count (1 or more)"),
    ("namespace", _setting("workloads_namespace", "Test"),
     ["variable workloads_namespace: 'Test' is not a namespace name (lower-case RFC 1123 label: a-z, 0-9 and '-', "
      "at most 63)",
      "variables verify_namespace 'test' and workloads_namespace 'Test' differ; verify looks for the test workloads "
      "in verify_namespace"]),
    ("labels", _setting("workloads_busybox_labels", {"app": "busy box"}),
     ["variable workloads_busybox_labels: label app: value 'busy box' is not a label value (a-z, A-Z, 0-9, '-', "
      "'_', '.', at most 63; quote numbers and booleans)",
      "variable verify_probe_selector: {'app': 'busybox'} does not select the busybox pods "
      "(workloads_busybox_labels {'app': 'busy box'}); the in-cluster checks would find no probe pod"]),
    ("controller-variable-on-one-host", _on_host("w2", "workloads_namespace", "demo"),
     "host w2: variable workloads_namespace: 'demo' is set for this host, but the workloads stage runs on the "
     "controller (localhost), which uses 'test'; set it where localhost sees it (group_vars/all or -e)"),
    # --- verify
    ("body-pattern", _setting("verify_body_pattern", "Welcome to (nginx"),
     "variable verify_body_pattern: 'Welcome to (nginx' is not a regular expression (Python re: missing ), "
     "unterminated subpattern at position 11)"),
    ("http-timeout-zero", _setting("verify_http_timeout", 0),
     "variable verify_http_timeout: 0 is out of range (allowed: above 0)"),
    ("attempts-zero", _setting("verify_attempts", 0),
     "variable verify_attempts: 0 is out of range (allowed: 1 or more)"),
    ("fair-fraction", _setting("verify_spread_min_fair_fraction", 1.5),
     "variable verify_spread_min_fair_fraction: 1.5 is not a fraction above 0 and at most 1"),
    ("verify-node-hosts", _setting("verify_node_hosts", ["cp1", "w9"]),
     "variable verify_node_hosts: 'w9' is not a host of the inventory"),
    ("crio-source", _setting("verify_crio_source", "socket"),
     "variable verify_crio_source: 'socket' is not one of daemon, files"),
    # --- reset
    ("reset-cleanup-root", _setting("reset_cleanup_paths", ["/var/lib/kubelab", "/"]),
     "variable reset_cleanup_paths: '/' is a top-level directory; reset would delete it"),
    # --- operating systems (from the preflight probe)
    ("unsupported-family", _set(("platforms", "w2", "os_release"), UBUNTU),
     "host w2: unsupported operating system ubuntu 24 (family ubuntu); supported: RedHat 8, RedHat 9, Debian 12"),
    ("unsupported-debian-major", _set(("platforms", "w2", "os_release"), DEBIAN11),
     "host w2: unsupported operating system debian 11 (family Debian); supported: RedHat 8, RedHat 9, Debian 12"),
    ("unsupported-el-major", _set(("platforms", "w1", "os_release"), CENTOS7),
     "host w1: unsupported operating system centos 7 (family RedHat); supported: RedHat 8, RedHat 9, Debian 12"),
    ("unsupported-from-facts", _set(("platforms", "w1"), {"os_family": "Suse", "distribution": "openSUSE Leap",
                                                          "distribution_major_version": "15"}),
     "host w1: unsupported operating system openSUSE Leap 15 (family Suse); supported: RedHat 8, RedHat 9, Debian 12"),
]


def test_at_least_forty_bad_inputs():
    assert len(BAD) >= 40
    assert len({name for name, _, _ in BAD}) == len(BAD)


@pytest.mark.parametrize("mutate,message", [(m, msg) for _, m, msg in BAD], ids=[i for i, _, _ in BAD])
def test_bad_input_gives_exactly_its_message(mutate, message):
    data = good()
    mutate(data)
    expected = message if isinstance(message, list) else [message]
    assert run(data) == expected


def test_a_group_var_problem_is_reported_once_for_every_host():
    # group_vars/all: the controller and every host see the same bad value
    data = good()
    for host in data["hostvars"]:
        data["hostvars"][host]["crio_default_capabilities"] = ["CHOWN"]
    data["settings"]["crio_default_capabilities"] = ["CHOWN"]
    assert run(data) == ["variable crio_default_capabilities: ['CHOWN'] " + LACKS]


def test_a_group_problem_names_the_group_s_hosts():
    # group_vars/workers: only the workers see it
    data = good()
    for host in ("w1", "w2"):
        data["hostvars"][host]["crio_status_timeout"] = -5
    assert run(data) == ["host w1, w2: variable crio_status_timeout: -5 is out of range (allowed: above 0)"]


def test_every_host_is_checked_not_only_the_first():
    data = good()
    data["hostvars"]["w2"]["node_prep_selinux_mode"] = "off"
    assert run(data) == ["host w2: variable node_prep_selinux_mode: 'off' is not one of enforcing, permissive, "
                         "disabled"]


def test_all_problems_are_reported_at_once():
    data = good()
    _no_control_plane(keep_group=True)(data)
    data["settings"]["kubelab_kubernetes_version"] = "135"
    data["settings"]["workloads_nginx_image"] = "nginx::1"
    data["hostvars"]["w1"]["crio_default_capabilites"] = []
    data["platforms"]["w2"]["os_release"] = DEBIAN11
    problems = run(data)
    assert len(problems) == 5, problems
    assert problems[0].startswith("inventory: group 'control_plane' has no host")
    assert problems[1].startswith("variable kubelab_kubernetes_version: '135'")
    assert problems[2].startswith("variable workloads_nginx_image: 'nginx::1' is not an image reference")
    assert problems[3].startswith("host w1: variable crio_default_capabilites (value []): no kubelab role")
    assert problems[4].startswith("host w2: unsupported operating system debian 11")


def test_without_the_role_specs_only_the_built_in_rules_run():
    data = good()
    data["settings"]["crio_default_capabilites"] = ["X"]
    data["settings"]["crio_default_capabilities"] = ["NET_PING", "NET_RAW"]
    assert run(data, roles=None) == [
        "variable crio_default_capabilities: 'NET_PING' is not a Linux capability (capability.h names CHOWN .. "
        "CHECKPOINT_RESTORE)"]


def test_custom_group_names():
    data = good()
    data["groups"] = {"all": ["cp1", "w1", "w2"], "masters": ["cp1"], "nodes": ["w1", "w2"]}
    data["settings"]["kubelab_control_plane_group"] = "masters"
    data["settings"]["kubelab_workers_group"] = "nodes"
    assert run(data) == []
    data["settings"]["kubelab_control_plane_group"] = "control_plane"
    assert run(data)[0] == "inventory: group 'control_plane' has no host; exactly one control-plane host is required"


def test_groups_not_a_mapping():
    assert validate(["cp1"]) == ["inventory: groups must be a mapping of group name to host list, got ['cp1']"]


@pytest.mark.parametrize("version", SUPPORTED_KUBERNETES_MINORS)
def test_supported_versions_pass(version):
    data = good()
    data["settings"]["kubelab_kubernetes_version"] = version
    assert run(data) == []


@pytest.mark.parametrize("reference,ok", [
    ("nginx", True), ("nginx:1.27", True), ("docker.io/library/nginx:stable-alpine3.17-slim", True),
    ("registry.local:5000/lab/busybox@sha256:" + "a" * 64, True), ("[::1]:5000/busybox:1", True),
    ("Nginx", False), ("nginx:", False), ("nginx:stable alpine", False), ("-nginx", False),
    ("nginx@sha256:abc", False), ("", False),
])
def test_image_references(reference, ok):
    assert (image_reference_problem(reference) is None) is ok


@pytest.mark.parametrize("text,expected", [
    (ROCKY8, ("RedHat", "8", "rocky")),
    (CENTOS8, ("RedHat", "8", "centos")),
    (ALMA9, ("RedHat", "9", "almalinux")),
    (DEBIAN12, ("Debian", "12", "debian")),
    (UBUNTU, ("ubuntu", "24", "ubuntu")),
    ("", ("unknown", "", "")),
])
def test_platform_from_os_release(text, expected):
    assert platform_from_os_release(text) == expected


@pytest.mark.parametrize("version,kube,policy,reboot,action,fail", [
    (2, "1.35", "tolerate", False, "none", True),
    (1, "1.35", "tolerate", False, "tolerate", False),
    (1, "1.34", "tolerate", False, "tolerate", False),
    (1, "1.35", "migrate", True, "migrate", True),
    (1, "1.35", "migrate", False, "tolerate", False),
])
def test_cgroup_plan(version, kube, policy, reboot, action, fail):
    plan = cgroup_plan(version, kube, policy, reboot)
    assert plan["action"] == action
    assert plan["fail_cgroupv1"] is fail
    if action == "tolerate" and kube == "1.35":
        assert "refuses cgroup v1 by default" in plan["warning"]
    if action != "tolerate":
        assert plan["warning"] is None


def _run_module(capsys, args):
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exc:
            validate_module.main()
    out = json.loads(capsys.readouterr().out)
    return exc.value.code, out


def _module_args(data):
    args = copy.deepcopy(data)
    del args["platforms"]
    return args


def test_module_fails_with_every_message_before_any_host_is_contacted(capsys):
    data = good()
    data["groups"]["control_plane"] = ["cp1", "w1"]
    data["settings"]["crio_default_capabilities"] = ["NET_PING", "NET_RAW"]
    data["hostvars"]["w2"]["crio_default_capabilites"] = ["CHOWN"]
    args = _module_args(data)
    args["roles_dir"] = str(ROOT / "roles")
    code, out = _run_module(capsys, args)
    assert code == 1
    assert out["failed"] is True
    assert out["changed"] is False
    assert out["problems"] == [
        "inventory: group 'control_plane' has 2 hosts (cp1, w1); exactly one control-plane host is required",
        "host w1: in both groups 'control_plane' and 'workers'; a node is either the control plane or a worker",
        "variable crio_default_capabilities: 'NET_PING' is not a Linux capability (capability.h names CHOWN .. "
        "CHECKPOINT_RESTORE)",
        "host w2: variable crio_default_capabilites (value ['CHOWN']): no kubelab role has this variable, likely a "
        "typo; did you mean crio_default_capabilities?",
    ]
    assert out["msg"].startswith("kubelab found 4 problem(s) in the inventory and variables, no host was "
                                 "contacted:\n- inventory:")


def test_module_without_roles_dir_skips_the_spec_checks(capsys):
    data = good()
    data["hostvars"]["w2"]["crio_default_capabilites"] = ["CHOWN"]
    code, out = _run_module(capsys, _module_args(data))
    assert code == 0, out
    assert out["problems"] == []


def test_module_refuses_a_roles_dir_without_roles(capsys, tmp_path):
    data = good()
    args = _module_args(data)
    args["roles_dir"] = str(tmp_path)
    code, out = _run_module(capsys, args)
    assert code == 1
    assert out["msg"] == "kubelab_validate: roles_dir %s holds none of kubelab's roles" % tmp_path


def test_module_plans_cgroups_and_warns(capsys, monkeypatch):
    # Record what the module warns: where ansible-core 2.19 delivers a module's
    # warnings depends on whether controller code was imported earlier in the
    # same process (other tests use the Templar), so read them at the source.
    warned = []
    original_warn = validate_module.AnsibleModule.warn

    def recording_warn(self, warning, *args, **kwargs):
        warned.append(warning)
        return original_warn(self, warning, *args, **kwargs)

    monkeypatch.setattr(validate_module.AnsibleModule, "warn", recording_warn)
    data = good()
    data["cgroup_versions"] = {"cp1": 1, "w1": "2"}
    data["_ansible_check_mode"] = True
    data["roles_dir"] = str(ROOT / "roles")
    code, out = _run_module(capsys, data)
    assert code == 0, out
    assert out["changed"] is False
    assert out["cgroup"] == {"cp1": {"version": 1, "action": "tolerate", "fail_cgroupv1": False},
                             "w1": {"version": 2, "action": "none", "fail_cgroupv1": True}}
    assert len(warned) == 1
    assert warned[0].startswith("host cp1: cgroup v1: Kubernetes 1.35 kubelet refuses cgroup v1")


def test_module_plans_cgroups_with_the_role_default_version(capsys, monkeypatch):
    # kubelab_kubernetes_version not in the inventory: the role default (1.35) decides
    warned = []
    monkeypatch.setattr(validate_module.AnsibleModule, "warn", lambda self, warning, *a, **k: warned.append(warning))
    data = good()
    del data["settings"]["kubelab_kubernetes_version"]
    data["cgroup_versions"] = {"cp1": 1}
    data["roles_dir"] = str(ROOT / "roles")
    code, out = _run_module(capsys, data)
    assert code == 0, out
    assert warned == ["host cp1: " + cgroup_plan(1, "1.35")["warning"]]


def test_module_rejects_bad_cgroup_version(capsys):
    data = good()
    data["cgroup_versions"] = {"cp1": 3}
    code, out = _run_module(capsys, data)
    assert code == 1
    assert out["problems"] == ["host cp1: cgroup version 3 is neither 1 nor 2"]
    assert "no host was changed" in out["msg"]


def test_module_reports_platforms_and_ignores_null_settings(capsys):
    data = good()
    # null = not set or not renderable yet (it needs facts): not checked here
    data["settings"]["crio_default_capabilities"] = None
    data["hostvars"]["w1"]["kubelab_node_ip"] = None
    data["platforms"]["w1"] = {"os_family": "RedHat", "distribution": "AlmaLinux",
                               "distribution_major_version": "9"}
    code, out = _run_module(capsys, data)
    assert code == 0, out
    assert out["platforms"] == {"cp1": {"family": "RedHat", "major": "8", "id": "rocky"},
                                "w1": {"family": "RedHat", "major": "9", "id": "almalinux"},
                                "w2": {"family": "Debian", "major": "12", "id": "debian"}}


def test_messages_are_one_line():
    for _, mutate, _message in BAD:
        data = good()
        mutate(data)
        for problem in run(data):
            assert "\n" not in problem and re.match(r"^(inventory:|host |variables? )", problem), problem


def test_module_documentation_parses_and_names_every_option():
    doc = yaml.safe_load(validate_module.DOCUMENTATION)
    assert set(doc["options"]) == {"groups", "hostvars", "settings", "roles_dir", "platforms", "cgroup_versions",
                                   "addresses"}
    assert yaml.safe_load(validate_module.EXAMPLES)[0]["kubelab_validate"]["roles_dir"]
    assert set(yaml.safe_load(validate_module.RETURN)) == {"problems", "cgroup", "platforms"}


# --- kubelab_node_ip against the host's own addresses (preflight's second
# validation, after facts: finding 3, etcd and the kubelet cannot use an
# address the host does not have)

def _own_address_message(host, ip, listed):
    return (f"host {host}: kubelab_node_ip {ip} is not an address of this host (its addresses: {listed}); the kubelet "
            f"refuses a node IP the host does not have (\"node IP: \"{ip}\" not found in the host's network "
            "interfaces\") and on the control plane etcd cannot bind it; set kubelab_node_ip to one of the host's "
            "addresses")


def test_node_ip_must_be_one_of_the_host_s_addresses():
    data = good()
    addresses = {"cp1": ["10.0.2.15", "192.168.251.10", "fd00::10"],
                 "w1": ["10.0.2.16", "192.168.251.99", "fe80::1%eth1"],
                 "w2": ["192.168.251.12"]}
    assert validate(data["groups"], data["hostvars"], data["settings"], roles=ROLES, addresses=addresses) == [
        _own_address_message("w1", "192.168.251.11", "10.0.2.16, 192.168.251.99, fe80::1")]


def test_node_ip_check_skips_hosts_without_facts_and_compares_canonical_forms():
    data = good()
    data["hostvars"]["cp1"]["kubelab_node_ip"] = "fd00:0:0::0010"
    # w1: no facts (check mode ended it before its Python); w2: not given at all
    addresses = {"cp1": ["10.0.2.15", "fd00::10"], "w1": None}
    assert validate(data["groups"], data["hostvars"], data["settings"], roles=ROLES, addresses=addresses) == []


def test_node_ip_check_names_a_host_with_no_address():
    data = good()
    assert validate(data["groups"], data["hostvars"], data["settings"], roles=ROLES,
                    addresses={"w2": []}) == [_own_address_message("w2", "192.168.251.12", "none besides loopback")]


def test_module_checks_the_node_addresses_after_facts(capsys):
    data = good()
    args = _module_args(data)
    args["addresses"] = {"cp1": ["192.168.251.10"], "w1": ["192.168.251.11"], "w2": ["10.1.1.1"]}
    code, out = _run_module(capsys, args)
    assert code == 1
    assert out["changed"] is False
    assert out["problems"] == [_own_address_message("w2", "192.168.251.12", "10.1.1.1")]
    assert out["msg"].startswith("kubelab found 1 problem(s) in the inventory and variables, no node was configured "
                                 "(at most preflight installed the Python for Ansible):\n- host w2: kubelab_node_ip")


# --- preflight_python_interpreter / preflight_python_by_os

def test_python_overrides_as_the_lab_sets_them_are_valid():
    data = good()
    data["settings"]["preflight_python_by_os"] = {
        "RedHat-8": {"candidates": ["/opt/kubelab-el8-python/bin/python3"], "package": "kubelab-test-python"},
        "Rocky-9": {"candidates": []}, "Debian": {"package": "python3"}}
    data["hostvars"]["w2"]["preflight_python_interpreter"] = "/usr/bin/python3"
    data["hostvars"]["w1"]["preflight_python_interpreter"] = ""
    assert run(data) == []


def test_python_by_os_keys_are_the_keys_preflight_looks_up():
    from ansible.module_utils.kubelab_interpreter import DISTRIBUTIONS, os_keys
    from ansible.module_utils.kubelab_validate import SUPPORTED_PLATFORMS, python_os_keys

    looked_up = set()
    for ident in DISTRIBUTIONS:
        family = "Debian" if ident == "debian" else "RedHat"
        for fam, major in SUPPORTED_PLATFORMS:
            if fam == family:
                looked_up.update(os_keys(family, major, ident))
    assert set(python_os_keys()) == looked_up
    assert {"Rocky-8", "RedHat-8", "RedHat", "CentOS-8", "RedHat-9", "Debian", "Debian-12"} <= looked_up


# --- review findings: secrets, one list, one special-IP test, kubelet args, CNI checksum

TOKEN = "abcdef.0123456789abcdef"


@pytest.mark.parametrize("args, flag", [
    (["--token", TOKEN], "--token"),
    (["--token " + TOKEN], "--token"),
    (["--token=" + TOKEN], "--token"),
    (["--tls-bootstrap-token", TOKEN], "--tls-bootstrap-token"),
    (["--tls-bootstrap-token=" + TOKEN], "--tls-bootstrap-token"),
    (["--discovery-token", TOKEN], "--discovery-token"),
    (["--discovery-token=" + TOKEN], "--discovery-token"),
])
def test_a_join_token_is_refused_and_never_shown(args, flag):
    data = good()
    data["settings"]["workers_join_extra_args"] = args
    problems = run(data)
    assert len(problems) == 1
    assert problems[0].startswith("variable workers_join_extra_args: '%s ...': " % flag)
    assert problems[0].endswith("; remove it")
    assert TOKEN not in problems[0] and "0123456789abcdef" not in problems[0]


def test_every_flag_kubelab_joins_with_is_refused_by_the_validator():
    data = good()
    data["settings"]["workers_join_extra_args"] = ["--discovery-token-unsafe-skip-ca-verification", "--v=5"]
    assert run(data) == [
        "variable workers_join_extra_args: '--discovery-token-unsafe-skip-ca-verification': kubelab pins the cluster "
        "CA with --discovery-token-ca-cert-hash; skipping that verification is not allowed; remove it"]


@pytest.mark.parametrize("address, why", [
    ("ff12::1", "in the link-local multicast range (224.0.0.0/24, ff02::/10)"),   # ffX2::/16, Go IsLinkLocalMulticast
    ("::ffff:127.0.0.1", "in the loopback range (127.0.0.0/8, ::1/128)"),       # IPv4-mapped: tested as IPv4
    ("::ffff:169.254.1.1", "in the link-local range (169.254.0.0/16, fe80::/10)"),
    ("::ffff:0.0.0.0", "unspecified (0.0.0.0, ::)"),
])
def test_external_ips_refused_as_the_workloads_filter_and_the_api_server_refuse_them(address, why):
    import importlib.util

    spec = importlib.util.spec_from_file_location("workloads_filters_for_validate",
                                                  ROOT / "roles" / "workloads" / "filter_plugins" / "workloads.py")
    filters = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(filters)
    import ipaddress

    assert filters.special_ip(ipaddress.ip_address(address)) == why
    data = good()
    data["settings"]["workloads_external_ips"] = [address]
    problems = run(data)
    assert len(problems) == 1 and address in problems[0] and why in problems[0], problems


@pytest.mark.parametrize("arg, shown", [
    ("--v=2\nKUBELET_KUBEADM_ARGS=--x", "it has '\\n'"),
    ("--node-labels=a=b c=d", "it has ' '"),
    ("--v=2\t", "it has '\\t'"),
    ("--v=\x1b[31m", "it has '\\x1b'"),
    ("", "not empty"),
])
def test_kubelet_extra_args_with_white_space_or_control_characters_are_refused(arg, shown):
    data = good()
    data["hostvars"]["w1"]["kube_packages_kubelet_extra_args"] = ["--v=2", arg]
    problems = run(data)
    assert len(problems) == 1, problems
    assert problems[0].startswith("host w1: variable kube_packages_kubelet_extra_args: %s is not one kubelet "
                                  "argument (allowed: a flag like --v=2 with no white space or control characters"
                                  % repr(arg))
    assert shown in problems[0]


def test_kubelet_extra_args_without_white_space_pass():
    data = good()
    data["settings"]["kube_packages_kubelet_extra_args"] = ["--v=2", "--node-labels=a=b,c=d", '--x="q"\\']
    assert run(data) == []


@pytest.mark.parametrize("address, tail", [
    ("192.168.251.300", "'192.168.251.300' is not an IP address"),
    ("w1.lab", "'w1.lab' is not an IP address"),
    ("192.168.251.11 --v=9", "'192.168.251.11 --v=9' is not an IP address"),
])
def test_kubelet_node_ip_must_be_an_ip_address(address, tail):
    data = good()
    data["hostvars"]["w1"]["kube_packages_kubelet_node_ip"] = address
    assert run(data) == ["host w1: variable kube_packages_kubelet_node_ip: " + tail]


def test_kubelet_node_ip_may_be_empty_or_an_address():
    data = good()
    data["hostvars"]["w1"]["kube_packages_kubelet_node_ip"] = "192.168.251.11"
    data["hostvars"]["w2"]["kube_packages_kubelet_node_ip"] = ""
    assert run(data) == []


CNI_DEFAULT = yaml.safe_load((ROOT / "roles" / "control_plane" / "defaults" / "main.yml").read_text())


def test_a_new_cni_manifest_with_the_default_checksum_is_refused_naming_both_variables():
    data = good()
    data["settings"]["control_plane_cni_manifest"] = "https://example.com/kube-flannel.yml"
    problems = run(data)
    assert len(problems) == 1, problems
    text = problems[0]
    assert text.startswith("variables control_plane_cni_manifest 'https://example.com/kube-flannel.yml' and "
                           "control_plane_cni_manifest_checksum: the manifest is not the default ")
    assert CNI_DEFAULT["control_plane_cni_manifest"] in text
    assert CNI_DEFAULT["control_plane_cni_manifest_checksum"] in text
    assert "set control_plane_cni_manifest_checksum to the new manifest's 'sha256:'" in text


@pytest.mark.parametrize("extra", [
    {"control_plane_cni_manifest_checksum": "sha256:" + "b" * 64},
    {"control_plane_cni_manifest_checksum": ""},
])
def test_a_new_cni_manifest_with_its_own_or_no_checksum_passes(extra):
    data = good()
    data["settings"]["control_plane_cni_manifest"] = "https://example.com/kube-flannel.yml"
    data["settings"].update(extra)
    assert run(data) == []


def test_the_default_cni_manifest_set_explicitly_passes():
    data = good()
    data["settings"]["control_plane_cni_manifest"] = CNI_DEFAULT["control_plane_cni_manifest"]
    assert run(data) == []


@pytest.mark.parametrize("name, value, ok", [
    ("node_prep_firewalld_trusted_sources", ["10.244.0.0/16", "192.0.2.7"], True),
    ("node_prep_firewalld_trusted_sources", ["10.244.1.0/16"], False),
    ("node_prep_firewalld_trusted_interfaces", ["cni0", "veth+"], True),
    ("node_prep_firewalld_trusted_interfaces", ["eth0:1"], False),
])
def test_the_firewalld_trusted_zone_is_checked_up_front(name, value, ok):
    data = good()
    data["hostvars"]["w1"][name] = value
    problems = run(data)
    if ok:
        assert problems == []
    else:
        assert len(problems) == 1
        assert problems[0].startswith("host w1: variable %s: %r is not " % (name, value[-1]))
        assert "allowed: " in problems[0]


@pytest.mark.parametrize("name", ["control_plane_ignore_preflight_errors", "workers_ignore_preflight_errors"])
def test_ignore_lists_follow_one_rule_and_all_with_a_named_check_is_fine(name):
    """kubelab passes only 'all' when a list has it (module_utils/kubelab_sysverify.py ignored_preflight_errors),
    so the validator does not refuse [all, Mem]; both variables get the same rule (review finding 10)."""
    data = good()
    data["settings"][name] = ["all", "Mem"]
    assert run(data) == []
    data["settings"][name] = ["NumCPU", "Mem Swap", ""]
    assert run(data) == [
        "variable %s: %r is not one preflight check name (allowed: a name like NumCPU, Mem, Swap or "
        "SystemVerification, or all; no ',', white space or control characters: one name per list entry)"
        % (name, bad) for bad in ("Mem Swap", "")]


def test_a_cni_manifest_on_the_controller_needs_no_checksum():
    # a path is read on the controller, not downloaded: no checksum is tested
    # (the molecule scenarios and the demo use one with the default checksum)
    data = good()
    data["settings"]["control_plane_cni_manifest"] = "/srv/air-gapped/kube-flannel.yml"
    assert run(data) == []
