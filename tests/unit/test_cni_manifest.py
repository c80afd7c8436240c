"""The CNI manifest the control_plane role downloads and applies (issue 13, items 4 and 8).

* The default manifest is pinned to a flannel release and its checksum is
  checked by get_url (never ``releases/latest``).
* The applied copy gives flanneld ``FLANNELD_IFACE`` from the pod's
  ``status.hostIP`` (the Node's InternalIP = kubelab_node_ip), so flannel
  does not follow the default route on a multi-NIC node; the DaemonSet is
  the same for every node.

The role's own vars are rendered with Ansible's Templar, as in a play.
"""

from __future__ import annotations

import base64
import difflib
import re
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
ROLE = ROOT / "roles" / "control_plane"
TEST_MANIFEST = ROOT / "molecule" / "resources" / "cni" / "kube-flannel-test.yml"

# flannel's own manifest writes its lists unindented under the key
# (``env:`` then ``- name:`` at the same column); the test manifest indents
# them. Both shapes must get the variable.
UPSTREAM_SHAPED = """\
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: kube-flannel-ds
  namespace: kube-flannel
spec:
  selector:
    matchLabels:
      app: flannel
  template:
    metadata:
      labels:
        app: flannel
    spec:
      hostNetwork: true
      initContainers:
      - name: install-cni
        image: ghcr.io/flannel-io/flannel:v0.28.9
        command:
        - /opt/bin/install-conf
      containers:
      - name: kube-flannel
        image: ghcr.io/flannel-io/flannel:v0.28.9
        command:
        - /opt/bin/flanneld
        args:
        - --ip-masq
        - --kube-subnet-mgr
        env:
        - name: POD_NAME
          valueFrom:
            fieldRef:
              fieldPath: metadata.name
        - name: POD_NAMESPACE
          valueFrom:
            fieldRef:
              fieldPath: metadata.namespace
        - name: EVENT_QUEUE_DEPTH
          value: "5000"
"""


def defaults():
    return yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())


def role_vars():
    return yaml.safe_load((ROLE / "vars" / "main.yml").read_text())


def render(expr, **overrides):
    variables = {
        "control_plane_cni_manifest": "https://example.invalid/kube-flannel.yml",
        "control_plane_cni_manifest_checksum": "",
        "control_plane_state_dir": "/var/lib/kubelab",
        "control_plane_cni_set_pod_cidr": True,
        "control_plane_cni_set_iface": True,
        "kubelab_pod_network_cidr": "10.244.0.0/16",
        "kubelab_node_ip": "192.0.2.11",
        "inventory_hostname": "worker01",
    }
    variables.update(overrides)
    for name, value in role_vars().items():
        if name.startswith("__control_plane_cni_") and name not in variables:
            variables[name] = trust_as_template(value)
    return Templar(loader=DataLoader(), variables=variables).template(trust_as_template(expr))


def applied(source, **overrides):
    content = base64.b64encode(source.encode()).decode()
    return render("{{ __control_plane_cni_text }}", __control_plane_cni_source={"content": content}, **overrides)


def flanneld(manifest_text):
    ds = next(d for d in yaml.safe_load_all(manifest_text) if d and d["kind"] == "DaemonSet")
    return ds, next(c for c in ds["spec"]["template"]["spec"]["containers"] if c["name"] == "kube-flannel")


def cni_task(name_start):
    tasks = yaml.safe_load((ROLE / "tasks" / "cni.yml").read_text())
    return next(t for t in tasks if t["name"].startswith(name_start))


# ---- item 8: pinned manifest, checksum -------------------------------------

def test_default_manifest_is_a_pinned_release_with_its_checksum():
    d = defaults()
    url = d["control_plane_cni_manifest"]
    assert "latest" not in url
    assert re.search(r"/flannel-io/flannel/v\d+\.\d+\.\d+/", url), url
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", d["control_plane_cni_manifest_checksum"])
    specs = yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())["argument_specs"]["main"]["options"]
    for name in ("control_plane_cni_manifest", "control_plane_cni_manifest_checksum", "control_plane_cni_set_iface"):
        assert specs[name]["default"] == d[name], name


def test_download_checks_the_checksum():
    get_url = cni_task("Download the CNI manifest")["ansible.builtin.get_url"]
    assert get_url["checksum"] == "{{ control_plane_cni_manifest_checksum or omit }}"
    assert get_url["url"] == "{{ control_plane_cni_manifest }}"


def test_a_new_pin_is_downloaded_again():
    """The downloaded file's name follows URL and checksum (get_url runs only when it is absent)."""
    one = render("{{ __control_plane_cni_source_path }}", control_plane_cni_manifest_checksum="sha256:" + "a" * 64)
    other = render("{{ __control_plane_cni_source_path }}", control_plane_cni_manifest_checksum="sha256:" + "b" * 64)
    url = render("{{ __control_plane_cni_source_path }}", control_plane_cni_manifest="https://example.invalid/v2.yml")
    assert len({one, other, url}) == 3
    assert all(re.fullmatch(r"/var/lib/kubelab/cni-source-[0-9a-f]{12}\.yaml", p) for p in (one, other, url))
    assert render("{{ __control_plane_cni_source_path }}", control_plane_cni_manifest="files/kube-flannel.yml") \
        == "/var/lib/kubelab/cni-source.yaml"


# ---- item 4: flannel's interface from the node's address --------------------

@pytest.mark.parametrize("shape", ["upstream", "test_manifest"])
def test_flanneld_gets_its_interface_from_the_host_ip(shape):
    source = UPSTREAM_SHAPED if shape == "upstream" else TEST_MANIFEST.read_text()
    _ds, before = flanneld(source)
    assert "FLANNELD_IFACE" not in source
    out = applied(source)
    ds, container = flanneld(out)
    env = container["env"]
    assert env[0] == {"name": "FLANNELD_IFACE", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}}
    assert env[1:] == before["env"]  # flannel's own entries kept, in order
    # nothing else changed: four inserted lines are the whole difference
    only_iface = applied(source, control_plane_cni_set_pod_cidr=False)
    diff = [d for d in difflib.ndiff(source.splitlines(), only_iface.splitlines()) if d[:2] in ("+ ", "- ")]
    assert [d[:2] + d[2:].strip() for d in diff] == [
        "+ - name: FLANNELD_IFACE", "+ valueFrom:", "+ fieldRef:", "+ fieldPath: status.hostIP"]
    for init in ds["spec"]["template"]["spec"].get("initContainers", []):
        assert "env" not in init
    kubernetes_validate.validate(ds, "1.35", strict=True)


def test_the_daemonset_is_the_same_for_every_node():
    """No node address in the manifest: adding a worker does not change the DaemonSet."""
    source = TEST_MANIFEST.read_text()
    worker1 = applied(source, kubelab_node_ip="192.0.2.11", inventory_hostname="worker01")
    worker2 = applied(source, kubelab_node_ip="198.51.100.7", inventory_hostname="worker02")
    assert worker1 == worker2
    assert "192.0.2.11" not in worker1


def test_iface_rewrite_is_stable_optional_and_respects_a_given_iface():
    source = TEST_MANIFEST.read_text()
    once = applied(source)
    assert applied(once) == once  # a rerun writes the same file
    assert once.count("FLANNELD_IFACE") == 1
    assert "FLANNELD_IFACE" not in applied(source, control_plane_cni_set_iface=False)
    own = UPSTREAM_SHAPED.replace("        - name: EVENT_QUEUE_DEPTH\n",
                                  "        - name: FLANNELD_IFACE\n          value: eth1\n"
                                  "        - name: EVENT_QUEUE_DEPTH\n")
    assert applied(own) == own
    other = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  a: b\n"
    assert applied(other) == other
