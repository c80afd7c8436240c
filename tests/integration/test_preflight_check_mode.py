"""`ansible-playbook --check` on nodes whose Python is not installed yet
(issue 13, item 5), without containers: the "nodes" are this machine through
the local connection, and the OS's interpreter candidate is made absent with
preflight_python_by_os (the Python package that would provide it is never
installed: check mode changes nothing).

Check mode changes nothing, and the repositories and the CNI manifest point
at paths that do not exist, so even a regression that let a stage run here
would neither change this machine nor reach a network.

Proves: preflight reports what it would install and that the node's other
checks are skipped, ends that node cleanly, the later stages (nodes, control
plane, workers) leave it out, and the run exits 0; a node whose interpreter
exists goes on through preflight in the same run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
ABSENT = "/nonexistent/kubelab-test/bin/python3"


def run_check(tmp_path, inventory_text, playbooks):
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(inventory_text)
    play = tmp_path / "site-check.yml"
    play.write_text("---\n" + "".join(
        f"- name: Stage {name}\n  ansible.builtin.import_playbook: {ROOT / 'playbooks' / name}.yml\n" for name in playbooks))
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_LOCALHOST_WARNING="false",
               ANSIBLE_CACHE_PLUGIN_CONNECTION=str(tmp_path / "facts"), ANSIBLE_FORCE_COLOR="0",
               ANSIBLE_NOCOLOR="1", ANSIBLE_ROLES_PATH=str(ROOT / "roles"), ANSIBLE_LIBRARY=str(ROOT / "library"),
               ANSIBLE_MODULE_UTILS=str(ROOT / "module_utils"))
    cmd = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory), "--check", str(play)]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)


def debian12_here():
    try:
        text = Path("/etc/os-release").read_text()
    except OSError:
        return False
    return "ID=debian" in text and 'VERSION_ID="12"' in text


pytestmark.append(pytest.mark.skipif(not debian12_here(), reason="the local 'node' must be a supported OS (Debian 12)"))

INVENTORY = f"""\
all:
  vars:
    ansible_connection: local
    ansible_python_interpreter: {sys.executable}
    # never any network: if a stage ever ran here, its repositories are local paths that do not exist
    crio_repo_base_url: file:///nonexistent/kubelab-test/cri-o
    kube_packages_repo_base_url: file:///nonexistent/kubelab-test/core
    control_plane_cni_manifest: /nonexistent/kubelab-test/cni.yml
    control_plane_cni_manifest_checksum: ''
    # this Debian's Python candidate is made absent (and its package is a name no repository has)
    preflight_python_by_os:
      Debian:
        candidates: [{ABSENT}]
        package: kubelab-test-python
  children:
    control_plane:
      hosts:
        fresh-cp: {{kubelab_node_ip: 192.0.2.10}}
    workers:
      hosts:
        fresh-w1: {{kubelab_node_ip: 192.0.2.11}}
"""


def test_check_mode_on_fresh_nodes_reports_and_exits_0(tmp_path):
    proc = run_check(tmp_path, INVENTORY, ["preflight", "nodes", "control_plane", "workers"])
    out = proc.stdout
    assert proc.returncode == 0, out[-6000:] + proc.stderr[-3000:]
    for host in ("fresh-cp", "fresh-w1"):
        assert (f"{host}: would install kubelab-test-python with apt-get (for {ABSENT}); the remaining checks of "
                f"{host} need that Python and are skipped in check mode") in " ".join(out.split()), out[-6000:]
    # nothing ran on them after that: no facts gathered, no node facts published, no stage role
    assert "Gather the facts kubelab uses" not in out
    assert "Publish the node facts" not in out and "Set the kubelab_* node facts" not in out
    assert "TASK [node_prep" not in out and "TASK [control_plane" not in out and "TASK [workers" not in out
    assert "failed=0" in out and "unreachable=0" in out


def local_address():
    """A global address of this machine (the ready node is this machine: its
    kubelab_node_ip must be one of its own addresses)."""
    try:
        out = subprocess.run(["ip", "-o", "-4", "addr", "show", "scope", "global"], capture_output=True, text=True,
                             timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for line in out.splitlines():
        fields = line.split()
        if "inet" in fields:
            return fields[fields.index("inet") + 1].split("/")[0]
    return None


def ready_inventory(address):
    return INVENTORY.replace(
        "fresh-w1: {kubelab_node_ip: 192.0.2.11}",
        f"ready-w1: {{kubelab_node_ip: {address}, preflight_python_interpreter: {sys.executable}}}")


def test_check_mode_goes_on_for_a_node_with_its_python(tmp_path):
    address = local_address()
    if address is None:
        pytest.skip("this machine has no global IPv4 address for the ready node")
    proc = run_check(tmp_path, ready_inventory(address), ["preflight"])
    out = proc.stdout
    assert proc.returncode == 0, out[-6000:] + proc.stderr[-3000:]
    joined = " ".join(out.split())
    assert "fresh-cp: would install kubelab-test-python" in joined
    assert "ready-w1: would install" not in joined
    # the summary: the fresh node waits for its Python, it did not fail
    assert ("preflight: 1 of 2 node(s) ready; 1 node(s) need their Python first (check mode cannot look further "
            "there): fresh-cp\"") in joined, joined[-3000:]
    assert "failed or unreachable" not in joined
    # the ready node gathered its facts and published them; the fresh one did not
    publish = out[out.index("TASK [Set the kubelab_* node facts from what preflight found]"):]
    publish = publish[:publish.index("TASK [", 10)] if "TASK [" in publish[10:] else publish
    assert "ready-w1" in publish and "fresh-cp" not in publish
    assert "ready-w1 (kernel " in joined and "kubeadm --ignore-preflight-errors=" in joined


def test_a_node_address_the_node_does_not_have_is_refused_after_facts(tmp_path):
    # 192.0.2.11 is no address of this machine: kubeadm init/join would time
    # out there (etcd cannot bind it, the kubelet refuses it as its node IP)
    address = local_address()
    if address is None:
        pytest.skip("this machine has no global IPv4 address")
    proc = run_check(tmp_path, ready_inventory("192.0.2.11"), ["preflight"])
    out = proc.stdout
    assert proc.returncode != 0, out[-6000:]
    joined = " ".join(out.split())
    assert "TASK [preflight : Validate the node addresses in use]" in out
    assert "host ready-w1: kubelab_node_ip 192.0.2.11 is not an address of this host (its addresses: " in joined
    assert f"{address}" in joined[joined.index("host ready-w1: kubelab_node_ip"):]
    # the fresh node has no facts yet (check mode ended it): not checked, not named
    assert "host fresh-cp: kubelab_node_ip" not in joined


def no_cluster_here():
    """The stage tests below end at the stages' own check-mode 'no cluster
    yet' pre-tasks: never run them on a machine that has a cluster."""
    return not Path("/etc/kubernetes/admin.conf").exists()


@pytest.mark.skipif(not no_cluster_here(), reason="this machine has /etc/kubernetes/admin.conf")
@pytest.mark.parametrize("stage, host", [("control_plane", "fresh-cp"), ("workers", "fresh-w1")])
def test_a_stage_run_alone_runs_preflight_first(tmp_path, stage, host):
    """Review item 8: control_plane.yml / workers.yml run without preflight
    in the same run read kubelab_kubeadm_ignore_preflight_errors | default([])
    (EL8's cgroup v1 refusal not ignored). They run preflight first, as
    nodes.yml does: here it says what it would install and ends the node."""
    proc = run_check(tmp_path, INVENTORY, [stage])
    out = proc.stdout
    assert proc.returncode == 0, out[-6000:] + proc.stderr[-3000:]
    joined = " ".join(out.split())
    assert "TASK [preflight : Probe the node" in out, out[-6000:]
    assert f"{host}: would install kubelab-test-python with apt-get (for {ABSENT})" in joined, out[-6000:]
    assert f"TASK [{stage} :" not in out
    assert "failed=0" in out and "unreachable=0" in out


@pytest.mark.skipif(not no_cluster_here(), reason="this machine has /etc/kubernetes/admin.conf")
def test_the_workers_stage_alone_publishes_preflights_facts_for_a_ready_node(tmp_path):
    address = local_address()
    if address is None:
        pytest.skip("this machine has no global IPv4 address for the ready node")
    proc = run_check(tmp_path, ready_inventory(address), ["workers"])
    out = proc.stdout
    assert proc.returncode == 0, out[-6000:] + proc.stderr[-3000:]
    joined = " ".join(out.split())
    assert "ready-w1 (kernel " in joined and "kubeadm --ignore-preflight-errors=" in joined
    publish = out[out.index("TASK [Set the kubelab_* node facts from what preflight found]"):]
    publish = publish[:publish.index("TASK [", 10)]
    assert "ok: [ready-w1]" in publish
    # then the stage's own check-mode end: no cluster on the control plane yet
    assert "ready-w1 would join it" in joined and "TASK [workers :" not in out
    # preflight ran once: the fact it published keeps a second run in the same play from running it again
    assert out.count("TASK [preflight : Probe the node") == 1
