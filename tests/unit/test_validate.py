"""Preflight validation: inventory and variables in, one-line problems out.

Each bad input must produce exactly the message that names the host or the
variable; the good input must produce none. The module is also driven
through AnsibleModule to check that it fails with every message at once and
never reports a change.
"""

from __future__ import annotations

import copy
import json

import pytest
from ansible.module_utils.kubelab_validate import (
    LINUX_CAPABILITIES,
    cgroup_plan,
    platform_from_os_release,
    validate,
)
from ansible.module_utils.testing import patch_module_args

import kubelab_validate as validate_module

pytestmark = pytest.mark.unit

ROCKY8 = 'NAME="Rocky Linux"\nVERSION="8.10 (Green Obsidian)"\nID="rocky"\nID_LIKE="rhel centos fedora"\nVERSION_ID="8.10"\n'
CENTOS8 = 'NAME="CentOS Linux"\nVERSION="8"\nID="centos"\nID_LIKE="rhel fedora"\nVERSION_ID="8"\n'
ALMA9 = 'NAME="AlmaLinux"\nID="almalinux"\nID_LIKE="rhel centos fedora"\nVERSION_ID="9.4"\n'
DEBIAN12 = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n'
DEBIAN11 = 'ID=debian\nVERSION_ID="11"\n'
UBUNTU = 'ID=ubuntu\nID_LIKE=debian\nVERSION_ID="24.04"\n'
CENTOS7 = 'ID="centos"\nID_LIKE="rhel fedora"\nVERSION_ID="7"\n'

WRITEUP_CAPS = ["CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "SETGID", "SETUID",
                "SETPCAP", "NET_BIND_SERVICE", "KILL", "NET_RAW"]


def good():
    """A valid lab: one control plane, two workers, all settings set."""
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
            "preflight_cgroup_v1_policy": "tolerate",
            "preflight_allow_reboot": False,
            "node_prep_selinux_mode": "permissive",
            "node_prep_firewalld_control_plane_ports": ["6443/tcp", "2379-2380/tcp"],
            "node_prep_firewalld_worker_ports": ["10250/tcp", "30000-32767/tcp"],
        },
        "platforms": {"cp1": {"os_release": ROCKY8}, "w1": {"os_release": CENTOS8},
                      "w2": {"os_release": DEBIAN12}},
    }


def run(data):
    return validate(data["groups"], data["hostvars"], data["settings"], data["platforms"])


def test_good_inventory_has_no_problem():
    assert run(good()) == []


def test_no_workers_is_valid():
    data = good()
    data["groups"]["workers"] = []
    data["groups"]["all"] = ["cp1"]
    assert run(data) == []


def test_writeup_capabilities_are_linux_capabilities():
    assert set(WRITEUP_CAPS) <= LINUX_CAPABILITIES
    assert len(LINUX_CAPABILITIES) == 41  # CAP_CHOWN (0) .. CAP_CHECKPOINT_RESTORE (40)


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


def _overlap(data):
    data["settings"]["kubelab_service_cidr"] = "10.244.128.0/17"
    data["settings"]["kubelab_cluster_dns"] = "10.244.128.10"


def _both(data):
    data["groups"]["workers"] = ["cp1", "w1", "w2"]


BAD = [
    ("no-control-plane", _set(("groups", "control_plane"), []),
     "inventory: group 'control_plane' has no host; exactly one control-plane host is required"),
    ("missing-control-plane-group", _del(("groups", "control_plane")),
     "inventory: group 'control_plane' has no host; exactly one control-plane host is required"),
    ("two-control-planes", _set(("groups", "control_plane"), ["cp1", "cp2"]),
     "inventory: group 'control_plane' has 2 hosts (cp1, cp2); exactly one control-plane host is required"),
    ("host-in-both-groups", _both,
     "host cp1: in both groups 'control_plane' and 'workers'; a node is either the control plane or a worker"),
    ("duplicate-address", _set(("hostvars", "w2", "kubelab_node_ip"), "192.168.251.11"),
     "host w2: kubelab_node_ip 192.168.251.11 is already used by host w1; node addresses must be unique"),
    ("invalid-address", _set(("hostvars", "w1", "kubelab_node_ip"), "192.168.251.300"),
     "host w1: kubelab_node_ip '192.168.251.300' is not an IP address"),
    ("address-in-pod-network", _set(("hostvars", "w1", "kubelab_node_ip"), "10.244.3.7"),
     "host w1: kubelab_node_ip 10.244.3.7 is inside kubelab_pod_network_cidr 10.244.0.0/16"),
    ("version-float", _set(("settings", "kubelab_kubernetes_version"), 1.3),
     "variable kubelab_kubernetes_version: 1.3 is not of the form 1.NN (for example \"1.35\"); "
     "quote it in YAML so 1.30 does not become 1.3"),
    ("version-patch", _set(("settings", "kubelab_kubernetes_version"), "1.35.0"),
     "variable kubelab_kubernetes_version: '1.35.0' is not of the form 1.NN (for example \"1.35\"); "
     "quote it in YAML so 1.30 does not become 1.3"),
    ("version-v-prefix", _set(("settings", "kubelab_kubernetes_version"), "v1.35"),
     "variable kubelab_kubernetes_version: 'v1.35' is not of the form 1.NN (for example \"1.35\"); "
     "quote it in YAML so 1.30 does not become 1.3"),
    ("unknown-capability", _set(("settings", "crio_default_capabilities"), WRITEUP_CAPS + ["NET_PING"]),
     "variable crio_default_capabilities: 'NET_PING' is not a Linux capability"),
    ("lowercase-capability", _set(("settings", "crio_default_capabilities"), ["chown", "NET_RAW"]),
     "variable crio_default_capabilities: 'chown' is not a Linux capability (capability names are upper case: CHOWN)"),
    ("cap-prefix", _set(("settings", "crio_default_capabilities"), ["CHOWN", "CAP_NET_RAW"]),
     "variable crio_default_capabilities: 'CAP_NET_RAW': write capability names without the CAP_ prefix, "
     "as CRI-O does (NET_RAW)"),
    ("duplicate-capability", _set(("settings", "crio_default_capabilities"), ["NET_RAW", "CHOWN", "NET_RAW"]),
     "variable crio_default_capabilities: 'NET_RAW' is listed twice"),
    ("capabilities-not-list", _set(("settings", "crio_default_capabilities"), "CHOWN,NET_RAW"),
     "variable crio_default_capabilities: expected a list of capability names, got 'CHOWN,NET_RAW'"),
    ("capabilities-empty", _set(("settings", "crio_default_capabilities"), []),
     "variable crio_default_capabilities: the list is empty; give the complete list "
     "(a drop-in replaces CRI-O's whole default)"),
    ("unsupported-family", _set(("platforms", "w2", "os_release"), UBUNTU),
     "host w2: unsupported operating system ubuntu 24 (family ubuntu); supported: RedHat 8, RedHat 9, Debian 12"),
    ("unsupported-debian-major", _set(("platforms", "w2", "os_release"), DEBIAN11),
     "host w2: unsupported operating system debian 11 (family Debian); supported: RedHat 8, RedHat 9, Debian 12"),
    ("unsupported-el-major", _set(("platforms", "w1", "os_release"), CENTOS7),
     "host w1: unsupported operating system centos 7 (family RedHat); supported: RedHat 8, RedHat 9, Debian 12"),
    ("unsupported-from-facts", _set(("platforms", "w1"), {"os_family": "Suse", "distribution": "openSUSE Leap",
                                                          "distribution_major_version": "15"}),
     "host w1: unsupported operating system openSUSE Leap 15 (family Suse); supported: RedHat 8, RedHat 9, Debian 12"),
    ("bad-node-name", _set(("groups", "workers"), ["w1", "Worker_2"]),
     "host Worker_2: not a valid Kubernetes node name (lowercase RFC 1123: letters, digits, '-' and '.')"),
    ("networks-overlap", _overlap,
     "variables kubelab_pod_network_cidr 10.244.0.0/16 and kubelab_service_cidr 10.244.128.0/17 overlap"),
    ("cidr-host-bits", _set(("settings", "kubelab_pod_network_cidr"), "10.244.1.0/16"),
     "variable kubelab_pod_network_cidr: '10.244.1.0/16' is not a network address in CIDR form "
     "(10.244.1.0/16 has host bits set)"),
    ("dns-outside-services", _set(("settings", "kubelab_cluster_dns"), "10.244.0.10"),
     "variable kubelab_cluster_dns: 10.244.0.10 is outside kubelab_service_cidr 10.96.0.0/12"),
    ("bad-cgroup-policy", _set(("settings", "preflight_cgroup_v1_policy"), "ignore"),
     "variable preflight_cgroup_v1_policy: 'ignore' is not one of tolerate, migrate"),
    ("migrate-without-reboot", _set(("settings", "preflight_cgroup_v1_policy"), "migrate"),
     "variable preflight_cgroup_v1_policy: 'migrate' reboots cgroup v1 nodes; set preflight_allow_reboot: true "
     "to allow it, or use 'tolerate'"),
    ("bad-selinux-mode", _set(("settings", "node_prep_selinux_mode"), "permisive"),
     "variable node_prep_selinux_mode: 'permisive' is not one of enforcing, permissive, disabled"),
    ("dropin-not-conf", _set(("settings", "crio_capabilities_dropin"), "caps.toml"),
     "variable crio_capabilities_dropin: 'caps.toml' must be a plain file name ending in .conf "
     "(a file directly in /etc/crio/crio.conf.d)"),
    ("dropin-path", _set(("settings", "crio_capabilities_dropin"), "../crio.conf"),
     "variable crio_capabilities_dropin: '../crio.conf' must be a plain file name ending in .conf "
     "(a file directly in /etc/crio/crio.conf.d)"),
    ("bad-port", _set(("settings", "node_prep_firewalld_worker_ports"), ["10250/tcp", "32767-30000/tcp"]),
     "variable node_prep_firewalld_worker_ports: '32767-30000/tcp' is not PORT/PROTO or LOW-HIGH/PROTO "
     "(tcp, udp, sctp)"),
]


@pytest.mark.parametrize("mutate,message", [(m, msg) for _, m, msg in BAD], ids=[i for i, _, _ in BAD])
def test_bad_input_gives_exactly_its_message(mutate, message):
    data = good()
    mutate(data)
    assert run(data) == [message]


def test_all_problems_are_reported_at_once():
    data = good()
    data["groups"]["control_plane"] = []
    data["settings"]["kubelab_kubernetes_version"] = "135"
    data["platforms"]["w2"]["os_release"] = DEBIAN11
    problems = run(data)
    assert len(problems) == 3
    assert problems[0].startswith("inventory: group 'control_plane' has no host")
    assert problems[1].startswith("variable kubelab_kubernetes_version: '135'")
    assert problems[2].startswith("host w2: unsupported operating system debian 11")


def test_custom_group_names():
    data = good()
    data["groups"] = {"masters": ["cp1"], "nodes": ["w1"]}
    data["settings"]["kubelab_control_plane_group"] = "masters"
    data["settings"]["kubelab_workers_group"] = "nodes"
    assert run(data) == []
    data["settings"]["kubelab_control_plane_group"] = "control_plane"
    assert run(data) == ["inventory: group 'control_plane' has no host; exactly one control-plane host is required"]


def test_groups_not_a_mapping():
    assert validate(["cp1"]) == ["inventory: groups must be a mapping of group name to host list, got ['cp1']"]


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


def test_module_fails_with_every_message(capsys):
    data = good()
    data["groups"]["control_plane"] = ["cp1", "w1"]
    data["settings"]["crio_default_capabilities"] = ["NET_PING"]
    code, out = _run_module(capsys, copy.deepcopy(data))
    assert code == 1
    assert out["failed"] is True
    assert out["changed"] is False
    assert out["problems"] == [
        "inventory: group 'control_plane' has 2 hosts (cp1, w1); exactly one control-plane host is required",
        "host w1: in both groups 'control_plane' and 'workers'; a node is either the control plane or a worker",
        "variable crio_default_capabilities: 'NET_PING' is not a Linux capability",
    ]
    assert out["msg"].startswith("kubelab preflight found 3 problem(s), no host was changed:\n- inventory:")


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
    code, out = _run_module(capsys, data)
    assert code == 0
    assert out["changed"] is False
    assert out["cgroup"] == {"cp1": {"version": 1, "action": "tolerate", "fail_cgroupv1": False},
                             "w1": {"version": 2, "action": "none", "fail_cgroupv1": True}}
    assert len(warned) == 1
    assert warned[0].startswith("host cp1: cgroup v1: Kubernetes 1.35 kubelet refuses cgroup v1")


def test_module_rejects_bad_cgroup_version(capsys):
    data = good()
    data["cgroup_versions"] = {"cp1": 3}
    code, out = _run_module(capsys, data)
    assert code == 1
    assert out["problems"] == ["host cp1: cgroup version 3 is neither 1 nor 2"]


def test_module_reports_platforms_and_ignores_null_settings(capsys):
    data = good()
    # null = not set: the role default applies and is not checked here
    data["settings"]["crio_default_capabilities"] = None
    data["platforms"]["w1"] = {"os_family": "RedHat", "distribution": "AlmaLinux",
                               "distribution_major_version": "9"}
    code, out = _run_module(capsys, data)
    assert code == 0
    assert out["platforms"] == {"cp1": {"family": "RedHat", "major": "8", "id": "rocky"},
                                "w1": {"family": "RedHat", "major": "9", "id": "almalinux"},
                                "w2": {"family": "Debian", "major": "12", "id": "debian"}}
