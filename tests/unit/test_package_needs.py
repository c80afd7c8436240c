"""crio and kube_packages: what their probes' output makes them skip.

The roles' own variables (vars/*.yml) evaluated with Ansible's templating on
probe output, parsed the way the roles parse it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

pytestmark = pytest.mark.unit

ROLES = Path(__file__).resolve().parents[2] / "roles"
NAMES = ["kubelet", "kubeadm", "kubectl"]


def templar(role, os_file, probe_lines, **extra):
    variables = {}
    for rel in ("defaults/main.yml", "vars/main.yml", "vars/" + os_file):
        for key, value in yaml.safe_load((ROLES / role / rel).read_text()).items():
            variables[key] = trust_as_template(value) if isinstance(value, str) else value
    variables.update({"kubelab_kubernetes_version": "1.35", "__%s_probe" % role: {"stdout_lines": probe_lines}})
    variables.update(extra)
    return Templar(loader=DataLoader(), variables=variables)


def truth(t, expr):
    return t.template(trust_as_template("{{ (%s) | bool }}" % expr)) is True


def dnf_probe(locks=None, versions=None, plugin=True):
    versions = versions or {n: "0:1.35.0-150500.1.1" for n in NAMES}
    locks = {n: "%s-%s.*" % (n, versions[n]) for n in NAMES if n in versions} if locks is None else locks
    lines = ["lock_plugin=%s" % ("present" if plugin else "absent")]
    for n in NAMES:
        v = versions.get(n)
        lines += ["pkg.%s=%s" % (n, v.split(":", 1)[1]), "evr.%s=%s" % (n, v)] if v else ["pkg.%s=<absent>" % n]
        lines.append("locks.%s=%s" % (n, locks.get(n, "")))
    return lines


def test_dnf_locked_at_the_installed_versions_needs_nothing():
    t = templar("kube_packages", "RedHat.yml", dnf_probe())
    assert truth(t, "__kube_packages_installed_ok")
    assert truth(t, "__kube_packages_locked_ok")
    assert not truth(t, "__kube_packages_need_packages")


@pytest.mark.parametrize("probe", [
    dnf_probe(locks={"kubelet": "", "kubeadm": "kubeadm-0:1.35.0-150500.1.1.*", "kubectl": "kubectl-0:1.35.0-150500.1.1.*"}),
    dnf_probe(locks={n: "%s-0:1.34.2-1.1.*" % n for n in NAMES}),  # locked at another version
    dnf_probe(locks={n: "%s-0:1.35.0-150500.1.1.* %s-0:1.34.2-1.1.*" % (n, n) for n in NAMES}),  # two entries
    dnf_probe(plugin=False),
    dnf_probe(versions={"kubelet": "0:1.34.2-1.1", "kubeadm": "0:1.35.0-1.1", "kubectl": "0:1.35.0-1.1"}),
    dnf_probe(versions={"kubeadm": "0:1.35.0-1.1", "kubectl": "0:1.35.0-1.1"}),  # kubelet missing
])
def test_dnf_lock_or_version_drift_runs_kubelab_dnf(probe):
    t = templar("kube_packages", "RedHat.yml", probe)
    assert truth(t, "__kube_packages_need_packages")


def apt_probe(held="kubeadm,kubectl,kubelet", version="1.35.0-1.1"):
    return ["pkg.%s=%s" % (n, version) for n in NAMES] + ["held=%s" % held]


def test_apt_installed_and_held_needs_nothing_and_drift_is_seen():
    assert not truth(templar("kube_packages", "Debian-12.yml", apt_probe()), "__kube_packages_need_packages")
    assert truth(templar("kube_packages", "Debian-12.yml", apt_probe(held="kubeadm,kubectl")), "__kube_packages_need_packages")
    assert truth(templar("kube_packages", "Debian-12.yml", apt_probe(version="1.34.2-1.1")), "__kube_packages_need_packages")


@pytest.mark.parametrize("pkg, ok", [
    ("1.35.0-1.1", True), ("1.35.12-150500.1.1", True), ("1.350.0-1", False), ("1.34.9-1.1", False), ("<absent>", False),
])
def test_crio_package_matches_the_version_glob(pkg, ok):
    t = templar("crio", "Debian-12.yml", ["pkg=%s" % pkg, "enabled=enabled", "active=active"],
                crio_version="1.35")
    assert truth(t, "__crio_package_ok") is ok
    assert truth(t, "__crio_running")


def test_crio_not_running_or_disabled():
    t = templar("crio", "RedHat.yml", ["pkg=1.35.0-1.1", "enabled=disabled", "active=active"], crio_version="1.35")
    assert not truth(t, "__crio_running")
    t = templar("crio", "RedHat.yml", ["pkg=1.35.0-1.1", "enabled=enabled", "active=inactive"], crio_version="1.35")
    assert not truth(t, "__crio_running")
