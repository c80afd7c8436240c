"""kubelab_dnf: command planning from rpm -q and the lock list, check mode,
and a full run against rpm/dnf faked at run_command.
"""

from __future__ import annotations

import json

import pytest
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

import kubelab_dnf
from kubelab_dnf import parse_locks, parse_rpm_query, plan

pytestmark = pytest.mark.unit

K = ["kubelet", "kubeadm", "kubectl"]
V135 = ("0", "1.35.0", "150500.1.1")
V134 = ("0", "1.34.2", "150500.1.1")


def test_parse_rpm_query_skips_not_installed():
    out = "kubelet\t0\t1.35.0\t150500.1.1\npackage kubeadm is not installed\n"
    assert parse_rpm_query(out) == {"kubelet": V135}


def test_parse_locks():
    text = ("# Added lock on Thu\nkubelet-0:1.35.0-150500.1.1.*\n!cri-o-0:1.34.0-1.1.*\n"
            "kubeadm-0:1.35.0-150500.1.1.*\n\ngarbage\n")
    assert parse_locks(text) == {"kubelet": ["kubelet-0:1.35.0-150500.1.1.*"],
                                 "kubeadm": ["kubeadm-0:1.35.0-150500.1.1.*"]}


def _locks(*names, v=V135):
    return {n: ["%s-%s:%s-%s.*" % (n, *v)] for n in names}


def test_nothing_to_do_when_installed_and_locked():
    assert plan(K, "1.35.*", True, {n: V135 for n in K}, _locks(*K)) == ([], [], [])


def test_fresh_install_then_lock():
    commands, to_install, to_lock = plan(K, "1.35.*", True, {}, {})
    assert commands == [["dnf", "-y", "install", "kubelet-1.35.*", "kubeadm-1.35.*", "kubectl-1.35.*"],
                        ["dnf", "-y", "versionlock", "add"] + K]
    assert to_install == K and to_lock == K


def test_installed_but_not_locked_only_locks():
    commands, to_install, _ = plan(K, "1.35.*", True, {n: V135 for n in K}, _locks("kubelet"))
    assert to_install == []
    assert commands == [["dnf", "-y", "versionlock", "add", "kubeadm", "kubectl"]]


def test_version_change_deletes_blocking_locks_first():
    commands, to_install, _ = plan(K, "1.35.*", True, {n: V134 for n in K}, _locks(*K, v=V134))
    assert to_install == K
    assert commands == [
        ["dnf", "-y", "versionlock", "delete", "kubelet-0:1.34.2-150500.1.1.*", "kubeadm-0:1.34.2-150500.1.1.*",
         "kubectl-0:1.34.2-150500.1.1.*"],
        ["dnf", "-y", "install", "kubelet-1.35.*", "kubeadm-1.35.*", "kubectl-1.35.*"],
        ["dnf", "-y", "versionlock", "add"] + K,
    ]


def test_stale_lock_on_matching_install_is_replaced():
    # installed 1.35.0 matches, but the lock points at another build
    commands, to_install, _ = plan(["kubelet"], "1.35.*", True, {"kubelet": V135},
                                   _locks("kubelet", v=("0", "1.35.0", "9.9")))
    assert to_install == []
    assert commands == [["dnf", "-y", "versionlock", "delete", "kubelet-0:1.35.0-9.9.*"],
                        ["dnf", "-y", "versionlock", "add", "kubelet"]]


def test_no_lock_no_version():
    assert plan(["cri-o"], None, False, {}, {}) == ([["dnf", "-y", "install", "cri-o"]], ["cri-o"], [])
    assert plan(["cri-o"], None, False, {"cri-o": V134}, {}) == ([], [], [])


def test_version_pattern_matches_version_release():
    assert plan(["kubelet"], "1.35.0-150500.1.1", False, {"kubelet": V135}, {})[0] == []
    assert plan(["kubelet"], "1.35.1*", False, {"kubelet": V135}, {})[0] == [
        ["dnf", "-y", "install", "kubelet-1.35.1*"]]


class FakeTools:
    """rpm and dnf as run_command sees them; dnf install/versionlock act on a fake rpmdb and lock file."""

    def __init__(self, rpmdb, lockfile, available):
        self.rpmdb = rpmdb
        self.lockfile = lockfile
        self.available = available
        self.calls = []

    def __call__(self, args, **kwargs):
        self.calls.append(list(args))
        tool, rest = args[0].rsplit("/", 1)[-1], args[1:]
        if tool == "rpm":
            names = rest[3:]
            out = "".join("%s\t%s\t%s\t%s\n" % ((n,) + self.rpmdb[n]) if n in self.rpmdb
                          else "package %s is not installed\n" % n for n in names)
            return sum(n not in self.rpmdb for n in names), out, ""
        if rest[:2] == ["-y", "install"]:
            for spec in rest[2:]:
                name = spec.split("-1.")[0]
                if name not in self.available:
                    return 1, "", "Error: Unable to find a match: %s" % spec
                self.rpmdb[name] = self.available[name]
            return 0, "Complete!", ""
        if rest[:3] == ["-y", "versionlock", "add"]:
            with open(self.lockfile, "a") as handle:
                for name in rest[3:]:
                    handle.write("%s-%s:%s-%s.*\n" % ((name,) + self.rpmdb[name]))
            return 0, "", ""
        if rest[:3] == ["-y", "versionlock", "delete"]:
            with open(self.lockfile) as handle:
                kept = [line for line in handle if line.strip() not in rest[3:]]
            with open(self.lockfile, "w") as handle:
                handle.writelines(kept)
            return 0, "", ""
        raise AssertionError("unexpected command %s" % args)


@pytest.fixture()
def env(tmp_path, monkeypatch):
    conf = tmp_path / "versionlock.conf"
    lockfile = tmp_path / "versionlock.list"
    conf.write_text("[main]\nenabled = 1\nlocklist = %s\n" % lockfile)
    lockfile.write_text("")
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda self, name, *a, **k: "/usr/bin/" + name)
    return conf, lockfile


def _run(monkeypatch, capsys, fake, args):
    monkeypatch.setattr(basic.AnsibleModule, "run_command", fake)
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exc:
            kubelab_dnf.main()
    return exc.value.code, json.loads(capsys.readouterr().out)


def test_module_installs_locks_then_is_idempotent(env, monkeypatch, capsys):
    conf, lockfile = env
    fake = FakeTools({}, str(lockfile), {n: V135 for n in K})
    args = {"name": K, "version": "1.35.*", "lock": True, "versionlock_conf": str(conf)}
    code, out = _run(monkeypatch, capsys, fake, args)
    assert code == 0 and out["changed"] is True
    assert out["installed"] == {n: "0:1.35.0-150500.1.1" for n in K}
    assert out["locks"] == ["%s-0:1.35.0-150500.1.1.*" % n for n in K]
    fake.calls.clear()
    code, out = _run(monkeypatch, capsys, fake, args)
    assert code == 0 and out["changed"] is False and out["commands"] == []
    assert [c[0] for c in fake.calls] == ["/usr/bin/rpm"]  # a no-op run is one rpm query


def test_module_check_mode_runs_only_the_query(env, monkeypatch, capsys):
    conf, lockfile = env
    fake = FakeTools({n: V134 for n in K}, str(lockfile), {n: V135 for n in K})
    code, out = _run(monkeypatch, capsys, fake, {"name": K, "version": "1.35.*", "lock": True,
                                                 "versionlock_conf": str(conf), "_ansible_check_mode": True})
    assert code == 0 and out["changed"] is True
    assert out["commands"] == [["dnf", "-y", "install", "kubelet-1.35.*", "kubeadm-1.35.*", "kubectl-1.35.*"],
                               ["dnf", "-y", "versionlock", "add"] + K]
    assert [c[0] for c in fake.calls] == ["/usr/bin/rpm"]
    assert out["installed"] == {n: "0:1.34.2-150500.1.1" for n in K}


def test_module_installs_plugin_when_missing(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda self, name, *a, **k: "/usr/bin/" + name)
    fake = FakeTools({"kubelet": V135}, str(tmp_path / "l"), {})
    code, out = _run(monkeypatch, capsys, fake, {"name": ["kubelet"], "lock": True, "_ansible_check_mode": True,
                                                 "versionlock_conf": str(tmp_path / "missing.conf")})
    assert out["commands"][0] == ["dnf", "-y", "install", "python3-dnf-plugin-versionlock"]


def test_module_fails_with_dnf_error(env, monkeypatch, capsys):
    conf, lockfile = env
    fake = FakeTools({}, str(lockfile), {})
    code, out = _run(monkeypatch, capsys, fake, {"name": ["cri-o"], "version": "1.35.*",
                                                 "versionlock_conf": str(conf)})
    assert code == 1
    assert out["msg"] == "`/usr/bin/dnf -y install cri-o-1.35.*` failed (rc 1): Error: Unable to find a match: cri-o-1.35.*"


def test_module_fails_when_repo_has_wrong_version(env, monkeypatch, capsys):
    conf, lockfile = env
    fake = FakeTools({}, str(lockfile), {"cri-o": ("0", "1.34.9", "1")})
    code, out = _run(monkeypatch, capsys, fake, {"name": ["cri-o"], "version": "1.35.*",
                                                 "versionlock_conf": str(conf)})
    assert code == 1
    assert out["msg"] == "after installing, cri-o: expected version 1.35.*, found cri-o 0:1.34.9-1"
