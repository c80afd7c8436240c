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
    def __init__(self, permanent=(), runtime=(), running=True):
        self.permanent = list(permanent)
        self.runtime = list(runtime)
        self.running = running
        self.calls = []

    def __call__(self, args, **kwargs):
        self.calls.append(list(args[1:]))
        rest = args[1:]
        if rest == ["--state"]:
            return (0, "running\n", "") if self.running else (252, "", "not running\n")
        if rest == ["--get-default-zone"]:
            return 0, "public\n", ""
        target = self.permanent if "--permanent" in rest else self.runtime
        if rest[-1] == "--list-ports":
            return 0, " ".join(target) + "\n", ""
        for arg in rest:
            if arg.startswith("--add-port="):
                target.append(arg.split("=", 1)[1])
        return 0, "success\n", ""


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
