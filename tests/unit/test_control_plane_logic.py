"""control_plane role: the init decision and the CNI pod-network rewrite.

Evaluates the role's own task expressions (read from its YAML files) with
Ansible's templating, so the table below tests what a run decides.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
ROLE = ROOT / "roles" / "control_plane"
MARKER = "/var/lib/kubelab/control-plane-initialized"


def task(path, name_start):
    return next(t for t in yaml.safe_load(path.read_text()) if t["name"].startswith(name_start))


def evaluate(t, variables):
    """Template a task's vars then its set_fact values, like Ansible does."""
    local = dict(variables)
    templar = Templar(loader=DataLoader(), variables=local)
    for name, expr in t.get("vars", {}).items():
        local[name] = trust_as_template(expr)
    templar = Templar(loader=DataLoader(), variables=local)
    return {k: templar.template(trust_as_template(v)) for k, v in t["ansible.builtin.set_fact"].items()}


def decide(admin_conf, marker, probe, leftovers=()):
    """probe: 'complete' (cluster-info found), 'incomplete' (API up, NotFound), 'down', None (not run)."""
    # what "Read the control plane's state" reported for the two files
    paths_state = {
        "/etc/kubernetes/admin.conf": "regular file:600:root:root:" + "a" * 40 if admin_conf else "<absent>",
        MARKER: "regular file:644:root:root:" + "b" * 40 if marker else "<absent>",
    }
    if probe == "complete":
        api = {"rc": 0, "stdout": "configmap/cluster-info", "stderr": ""}
    elif probe == "incomplete":
        api = {"rc": 1, "stderr": 'Error from server (NotFound): configmaps "cluster-info" not found'}
    elif probe == "down":
        api = {"rc": 1, "stderr": "The connection to the server 192.0.2.10:6443 was refused"}
    else:
        api = {"skipped": True}
    if probe == "complete":
        left = {"skipped": True}
    else:
        left = {
            "results": [
                {"item": p, "stat": {"exists": p in leftovers}}
                for p in ("/etc/kubernetes/manifests/kube-apiserver.yaml", "/etc/kubernetes/pki/ca.crt", "/var/lib/etcd/member")
            ]
        }
    facts = evaluate(
        task(ROLE / "tasks" / "state.yml", "Decide"),
        {
            "__control_plane_is": paths_state,
            "__control_plane_admin_conf": "/etc/kubernetes/admin.conf",
            "__control_plane_marker": MARKER,
            "__control_plane_api_probe": api,
            "__control_plane_leftovers": left,
            "control_plane_state_dir": "/var/lib/kubelab",
        },
    )
    return facts["__control_plane_state"].strip()


@pytest.mark.parametrize(
    "admin_conf, marker, probe, leftovers, expected",
    [
        # nothing there: first build
        (False, False, None, (), "absent"),
        # converged cluster, rerun: never re-init
        (True, True, "complete", (), "exists"),
        # a cluster built by hand before kubelab: adopted, not re-initialised
        (True, False, "complete", (), "exists"),
        # init died after the API came up but before its last phase
        (True, False, "incomplete", ("/etc/kubernetes/pki/ca.crt",), "partial"),
        # init died before the API answered
        (True, False, "down", ("/etc/kubernetes/manifests/kube-apiserver.yaml",), "partial"),
        (False, False, None, ("/etc/kubernetes/pki/ca.crt",), "partial"),
        # kubelab initialised it and the API is down: refuse, never reset
        (True, True, "down", ("/etc/kubernetes/pki/ca.crt",), "broken"),
        (False, True, None, (), "broken"),
        # kubelab initialised it, the API answers, cluster-info was deleted: leave it
        (True, True, "incomplete", (), "exists"),
    ],
)
def test_init_decision_table(admin_conf, marker, probe, leftovers, expected):
    assert decide(admin_conf, marker, probe, leftovers) == expected


def render_cni(source, cidr, rewrite=True, set_iface=False):
    """The manifest the role applies, from a downloaded SOURCE (the role's own vars).

    FLANNELD_IFACE (set_iface) is tested in tests/unit/test_cni_manifest.py.
    """
    import base64

    role_vars = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())
    variables = {
        "__control_plane_cni_source": {"content": base64.b64encode(source.encode()).decode()},
        "control_plane_cni_manifest": "https://example.invalid/kube-flannel.yml",
        "kubelab_pod_network_cidr": cidr,
        "control_plane_cni_set_pod_cidr": rewrite,
        "control_plane_cni_set_iface": set_iface,
    }
    for name in [n for n in role_vars if n.startswith("__control_plane_cni_")]:
        variables[name] = trust_as_template(role_vars[name])
    templar = Templar(loader=DataLoader(), variables=variables)
    # the task writes this variable
    t = task(ROLE / "tasks" / "cni.yml", "Write the CNI manifest to apply")
    assert t["ansible.builtin.copy"]["content"] == "{{ __control_plane_cni_text }}"
    return templar.template(trust_as_template("{{ __control_plane_cni_text }}"))


def net_conf(manifest_text):
    docs = [d for d in yaml.safe_load_all(manifest_text) if d]
    cm = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "kube-flannel-cfg")
    return json.loads(cm["data"]["net-conf.json"])


def test_cni_rewrite_sets_flannel_network_to_the_inventory_pod_cidr():
    source = (ROOT / "molecule" / "resources" / "cni" / "kube-flannel-test.yml").read_text()
    assert net_conf(source)["Network"] == "10.99.0.0/16"
    out = render_cni(source, "10.244.0.0/16")
    conf = net_conf(out)
    assert conf["Network"] == "10.244.0.0/16"
    assert conf["Backend"] == {"Type": "vxlan"}  # the rest of net-conf is kept
    # only the Network value differs
    assert out.replace("10.244.0.0/16", "10.99.0.0/16") == source


def test_cni_rewrite_is_stable_and_optional():
    source = (ROOT / "molecule" / "resources" / "cni" / "kube-flannel-test.yml").read_text()
    once = render_cni(source, "10.123.0.0/16")
    assert render_cni(once, "10.123.0.0/16") == once  # a rerun writes the same file
    assert render_cni(source, "10.123.0.0/16", rewrite=False) == source


def test_cni_rewrite_leaves_other_manifests_alone():
    other = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  a: b\n"
    assert render_cni(other, "10.244.0.0/16") == other


def api_answer(probe_lines, retry=None):
    """(retry task runs?, __control_plane_api_probe) for the probe's output and a retry result."""
    role_vars = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())
    variables = {
        "__control_plane_probe": {"stdout_lines": probe_lines},
        "__control_plane_is": {"/etc/kubernetes/admin.conf": "regular file:600:root:root:" + "a" * 40},
        "__control_plane_admin_conf": "/etc/kubernetes/admin.conf",
    }
    for name in ("__control_plane_api_first", "__control_plane_api_probe"):
        variables[name] = trust_as_template(role_vars[name])
    retry_task = task(ROLE / "tasks" / "state.yml", "Ask the API server again")
    templar = Templar(loader=DataLoader(), variables=variables)
    runs = all(templar.evaluate_conditional(trust_as_template(c)) for c in retry_task["when"])
    variables["__control_plane_api_retry"] = retry if runs else {"skipped": True, "changed": False}
    templar = Templar(loader=DataLoader(), variables=variables)
    return runs, templar.template(trust_as_template("{{ __control_plane_api_probe }}"))


def test_api_question_answered_by_the_probe_is_not_asked_again():
    runs, probe = api_answer(["kubeadm_version=v1.35.0", "api=ok"])
    assert not runs and probe["rc"] == 0
    runs, probe = api_answer(['api=Error from server (NotFound): configmaps "cluster-info" not found'])
    assert not runs and probe["rc"] == 1 and "NotFound" in probe["stderr"]


def test_api_question_retried_when_the_api_did_not_answer():
    retried = {"rc": 0, "stdout": "configmap/cluster-info", "stderr": "", "attempts": 3}
    runs, probe = api_answer(["api=The connection to the server 192.0.2.10:6443 was refused"], retry=retried)
    assert runs and probe == retried


def test_api_question_not_asked_without_admin_conf():
    runs, probe = api_answer(["kubeadm_version=v1.35.0"])
    assert not runs and probe.get("skipped") is True
