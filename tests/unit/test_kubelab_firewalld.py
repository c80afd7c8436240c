"""kubelab_firewalld against a firewall-cmd faked at run_command (state kept in two sets)."""

from __future__ import annotations

import json

import pytest
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

import kubelab_firewalld
from kubelab_firewalld import missing

pytestmark = pytest.mark.unit


class FakeFirewallCmd:
    """firewall-cmd's behaviour kubelab_firewalld relies on (firewalld v0.9.11 src/firewall-cmd.in).

    Ports per configuration; sources and interfaces per configuration and
    zone, each bound to one zone only: --change-source/--change-interface
    move one from its old zone, as firewall-cmd does.
    """

    def __init__(self, permanent=(), runtime=(), running=True, bound=None):
        self.permanent = list(permanent)
        self.runtime = list(runtime)
        self.running = running
        # (config, kind) -> {item: zone}
        self.bound = {(c, k): dict((bound or {}).get(k, {})) for c in ("permanent", "runtime")
                      for k in ("sources", "interfaces")}
        self.calls = []

    def __call__(self, args, **kwargs):
        self.calls.append(list(args[1:]))
        rest = args[1:]
        if rest == ["--state"]:
            return (0, "running\n", "") if self.running else (252, "", "not running\n")
        if rest == ["--get-default-zone"]:
            return 0, "public\n", ""
        config = "permanent" if "--permanent" in rest else "runtime"
        target = self.permanent if config == "permanent" else self.runtime
        zone = next(a.split("=", 1)[1] for a in rest if a.startswith("--zone="))
        if rest[-1] == "--list-ports":
            return 0, " ".join(target) + "\n", ""
        for kind in ("sources", "interfaces"):
            if rest[-1] == "--list-" + kind:
                return 0, " ".join(i for i, z in self.bound[(config, kind)].items() if z == zone) + "\n", ""
        for arg in rest:
            if arg.startswith("--add-port="):
                target.append(arg.split("=", 1)[1])
            elif arg.startswith("--change-source="):
                self.bound[(config, "sources")][arg.split("=", 1)[1]] = zone
            elif arg.startswith("--change-interface="):
                self.bound[(config, "interfaces")][arg.split("=", 1)[1]] = zone
        return 0, "success\n", ""

    def in_zone(self, config, kind, zone):
        return sorted(i for i, z in self.bound[(config, kind)].items() if z == zone)


def _run(monkeypatch, capsys, fake, args):
    monkeypatch.setattr(basic.AnsibleModule, "run_command", fake)
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda self, name, *a, **k: "/usr/bin/" + name)
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exc:
            kubelab_firewalld.main()
    return exc.value.code, json.loads(capsys.readouterr().out)


def test_missing_keeps_order_and_drops_duplicates():
    assert missing(["6443/tcp", "10250/tcp", "6443/tcp"], ["10250/tcp"]) == ["6443/tcp"]


def test_adds_missing_ports_in_one_command_each_then_noop(monkeypatch, capsys):
    fake = FakeFirewallCmd(permanent=["10250/tcp"], runtime=[])
    ports = ["6443/tcp", "10250/tcp", "30000-32767/tcp"]
    code, out = _run(monkeypatch, capsys, fake, {"ports": ports})
    assert code == 0 and out["changed"] is True
    assert out["added_permanent"] == ["6443/tcp", "30000-32767/tcp"]
    assert out["added_runtime"] == ports
    assert ["--permanent", "--zone=public", "--add-port=6443/tcp", "--add-port=30000-32767/tcp"] in fake.calls
    assert ["--zone=public", "--add-port=6443/tcp", "--add-port=10250/tcp", "--add-port=30000-32767/tcp"] in fake.calls
    assert not any("--reload" in call for call in fake.calls)
    fake.calls.clear()
    code, out = _run(monkeypatch, capsys, fake, {"ports": ports})
    assert out["changed"] is False
    assert not any(arg.startswith("--add-port") for call in fake.calls for arg in call)


def test_check_mode_adds_nothing(monkeypatch, capsys):
    fake = FakeFirewallCmd()
    code, out = _run(monkeypatch, capsys, fake, {"ports": ["8472/udp"], "zone": "trusted",
                                                 "_ansible_check_mode": True})
    assert out["changed"] is True and out["zone"] == "trusted"
    assert out["added_permanent"] == ["8472/udp"]
    assert fake.permanent == [] and fake.runtime == []


def test_not_running_fails_clearly(monkeypatch, capsys):
    code, out = _run(monkeypatch, capsys, FakeFirewallCmd(running=False), {"ports": ["8472/udp"]})
    assert code == 1
    assert out["msg"] == "firewalld is not running: `firewall-cmd --state` said 'not running'"


def test_binds_sources_and_interfaces_to_the_zone_permanent_and_runtime_then_noop(monkeypatch, capsys):
    fake = FakeFirewallCmd(bound={"sources": {"10.244.0.0/16": "trusted"}})
    del fake.bound[("runtime", "sources")]["10.244.0.0/16"]  # permanent only (after a reload it would be back)
    args = {"zone": "trusted", "sources": ["10.244.0.0/16"], "interfaces": ["cni0", "flannel.1"]}
    code, out = _run(monkeypatch, capsys, fake, args)
    assert code == 0 and out["changed"] is True and out["zone"] == "trusted"
    assert out["sources_added_permanent"] == [] and out["sources_added_runtime"] == ["10.244.0.0/16"]
    assert out["interfaces_added_permanent"] == ["cni0", "flannel.1"] == out["interfaces_added_runtime"]
    assert ["--zone=trusted", "--change-source=10.244.0.0/16"] in fake.calls
    assert ["--permanent", "--zone=trusted", "--change-interface=cni0", "--change-interface=flannel.1"] in fake.calls
    for config in ("permanent", "runtime"):
        assert fake.in_zone(config, "sources", "trusted") == ["10.244.0.0/16"]
        assert fake.in_zone(config, "interfaces", "trusted") == ["cni0", "flannel.1"]
    assert not any("--reload" in call or "--list-ports" in call for call in fake.calls)  # no ports asked for
    fake.calls.clear()
    code, out = _run(monkeypatch, capsys, fake, args)
    assert out["changed"] is False
    assert not any(arg.startswith("--change") for call in fake.calls for arg in call)


def test_an_interface_bound_to_another_zone_is_moved(monkeypatch, capsys):
    fake = FakeFirewallCmd(bound={"interfaces": {"cni0": "public"}})
    code, out = _run(monkeypatch, capsys, fake, {"zone": "trusted", "interfaces": ["cni0"]})
    assert out["changed"] is True
    assert fake.in_zone("runtime", "interfaces", "trusted") == ["cni0"]
    assert fake.in_zone("runtime", "interfaces", "public") == []


def test_check_mode_binds_nothing(monkeypatch, capsys):
    fake = FakeFirewallCmd()
    code, out = _run(monkeypatch, capsys, fake, {"zone": "trusted", "sources": ["10.244.0.0/16"],
                                                 "_ansible_check_mode": True})
    assert out["changed"] is True and out["sources_added_permanent"] == ["10.244.0.0/16"]
    assert fake.in_zone("permanent", "sources", "trusted") == []
    assert not any(arg.startswith("--change") for call in fake.calls for arg in call)


@pytest.mark.parametrize("option,value,why", [
    ("sources", "10.244.1.0/16", "has host bits set"),
    ("sources", "10.244.0.0/33", "10.244.0.0/33"),
    ("sources", "pods", "pods"),
    ("interfaces", "flannel.1-is-too-long", "longer than 15 characters"),
    ("interfaces", "cni 0", "contains ' '"),
    ("interfaces", "eth0:1", "contains ':'"),
    ("interfaces", "ve+th", "'+' is allowed only at the end"),
])
def test_invalid_sources_and_interfaces_fail_before_firewall_cmd_runs(monkeypatch, capsys, option, value, why):
    fake = FakeFirewallCmd()
    code, out = _run(monkeypatch, capsys, fake, {"zone": "trusted", option: [value]})
    assert code == 1
    assert out["msg"].startswith("%s: %r is not " % (option, value))
    assert why in out["msg"]
    assert "allowed:" in out["msg"]
    assert fake.calls == []


def test_valid_values_pass_validation():
    assert kubelab_firewalld.problems(["10.244.0.0/16", "fd00:10:244::/48", "192.0.2.7"],
                                      ["cni0", "flannel.1", "veth+"]) == []
