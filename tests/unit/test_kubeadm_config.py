"""kubeadm configuration rendering (role control_plane) for several Kubernetes minors.

Renders the role's real template and its real set_fact expressions with
Ansible's own templating, so what is tested is what a playbook run writes.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import filter_loader
from ansible.template import Templar, trust_as_template

pytestmark = pytest.mark.unit

# The kubelab role's filters (a dependency of control_plane and workers), as a play loads them.
filter_loader.add_directory(str(Path(__file__).resolve().parents[2] / "roles" / "kubelab" / "filter_plugins"))

ROLE = Path(__file__).resolve().parents[2] / "roles" / "control_plane"
KUBELAB_DEFAULTS = Path(__file__).resolve().parents[2] / "roles" / "kubelab" / "defaults" / "main.yml"


def templar(variables):
    return Templar(loader=DataLoader(), variables=variables)


def trusted(value):
    """Mark strings from the role's YAML as templates, as Ansible does for role files."""
    if isinstance(value, str):
        return trust_as_template(value)
    if isinstance(value, dict):
        return {k: trusted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [trusted(v) for v in value]
    return value


def base_vars(kubeadm_version, hostvars=None):
    variables = yaml.safe_load(KUBELAB_DEFAULTS.read_text())
    variables.update(yaml.safe_load((ROLE / "defaults" / "main.yml").read_text()))
    variables = trusted(variables)
    variables.update(
        {
            "ansible_facts": {"nodename": "CP1.Lab.Example", "default_ipv4": {"address": "192.0.2.10"}},
            "ansible_host": "192.0.2.10",
            "kubelab_node_ip": "192.0.2.10",
            "inventory_hostname": "cp1",
            "groups": {"control_plane": ["cp1"], "workers": ["w1"]},
            "hostvars": hostvars or {"cp1": {}, "w1": {}},
            "__control_plane_kubeadm_version": {"stdout": kubeadm_version + "\n"},
        }
    )
    return variables


def choose_facts(variables):
    """Evaluate the role's own 'Choose the kubeadm configuration API' task."""
    tasks = yaml.safe_load((ROLE / "tasks" / "main.yml").read_text())
    task = next(t for t in tasks if t["name"].startswith("Choose the kubeadm configuration API"))
    local = dict(variables)
    t = templar(local)
    for name, expr in task["vars"].items():
        local[name] = t.template(trust_as_template(expr))
    t = templar(local)
    facts = {k: t.template(trust_as_template(v)) for k, v in task["ansible.builtin.set_fact"].items()}
    # the template tests it with {% if %}: it must be a real bool, not the string "False"
    assert isinstance(facts["__control_plane_tolerate_cgroupv1"], bool)
    return facts


def render(kubeadm_version, **overrides):
    hostvars = overrides.pop("hostvars", None)
    variables = base_vars(kubeadm_version, hostvars)
    variables.update(choose_facts(variables))
    variables.update(overrides)
    source = (ROLE / "templates" / "kubeadm-config.yaml.j2").read_text()
    text = templar(variables).template(trust_as_template(source))
    docs = {d["kind"]: d for d in yaml.safe_load_all(text) if d}
    return text, docs


@pytest.mark.parametrize(
    "version, api",
    [("v1.29.4", "v1beta3"), ("v1.30.0", "v1beta3"), ("v1.31.0", "v1beta4"), ("v1.35.0", "v1beta4")],
)
def test_config_api_version_follows_kubeadm_minor(version, api):
    _, docs = render(version)
    assert set(docs) == {"InitConfiguration", "ClusterConfiguration", "KubeletConfiguration"}
    assert docs["InitConfiguration"]["apiVersion"] == f"kubeadm.k8s.io/{api}"
    assert docs["ClusterConfiguration"]["apiVersion"] == f"kubeadm.k8s.io/{api}"
    assert docs["KubeletConfiguration"]["apiVersion"] == "kubelet.config.k8s.io/v1beta1"
    assert docs["ClusterConfiguration"]["kubernetesVersion"] == version


@pytest.mark.parametrize("version", ["v1.35.0", "v1.30.2"])
def test_node_ip_is_not_repeated_in_kubelet_extra_args(version):
    """--node-ip comes once, from KUBELET_EXTRA_ARGS (kube_packages), on every node (tests/unit/test_kubelet_node_ip.py)."""
    text, docs = render(version)
    assert "kubeletExtraArgs" not in docs["InitConfiguration"]["nodeRegistration"]
    assert "node-ip" not in text


def test_lab_values_land_in_the_config():
    _, docs = render("v1.35.0")
    init, cluster, kubelet = docs["InitConfiguration"], docs["ClusterConfiguration"], docs["KubeletConfiguration"]
    assert init["nodeRegistration"]["criSocket"] == "unix:///var/run/crio/crio.sock"
    assert init["nodeRegistration"]["name"] == "cp1.lab.example"  # kubeadm lower-cases the host name
    assert init["localAPIEndpoint"] == {"advertiseAddress": "192.0.2.10", "bindPort": 6443}
    assert cluster["networking"] == {
        "podSubnet": "10.244.0.0/16",
        "serviceSubnet": "10.96.0.0/12",
        "dnsDomain": "cluster.local",
    }
    assert cluster["controlPlaneEndpoint"] == "192.0.2.10:6443"
    assert kubelet["cgroupDriver"] == "systemd"
    assert kubelet["clusterDNS"] == ["10.96.0.10"]
    assert "failCgroupV1" not in kubelet
    assert init["bootstrapTokens"][0]["ttl"] == "10m0s"
    assert "token" not in init["bootstrapTokens"][0]  # never a fixed token in a file


def test_fail_cgroupv1_false_when_a_node_tolerates_cgroup_v1():
    hostvars = {"cp1": {"kubelab_kubelet_fail_cgroupv1": True}, "w1": {"kubelab_kubelet_fail_cgroupv1": False}}
    _, docs = render("v1.35.0", hostvars=hostvars)
    assert docs["KubeletConfiguration"]["failCgroupV1"] is False


def test_fail_cgroupv1_absent_when_all_nodes_are_cgroup_v2():
    hostvars = {"cp1": {"kubelab_kubelet_fail_cgroupv1": True}, "w1": {}}
    _, docs = render("v1.35.0", hostvars=hostvars)
    assert "failCgroupV1" not in docs["KubeletConfiguration"]


def test_fail_cgroupv1_never_written_for_kubelets_that_lack_it():
    hostvars = {"cp1": {"kubelab_kubelet_fail_cgroupv1": False}, "w1": {}}
    _, docs = render("v1.30.0", hostvars=hostvars)
    assert "failCgroupV1" not in docs["KubeletConfiguration"]


def test_ignore_preflight_errors_and_sans():
    _, docs = render(
        "v1.35.0",
        control_plane_ignore_preflight_errors=["SystemVerification"],
        control_plane_cert_sans=["api.lab.example"],
    )
    assert docs["InitConfiguration"]["nodeRegistration"]["ignorePreflightErrors"] == ["SystemVerification"]
    assert docs["ClusterConfiguration"]["apiServer"]["certSANs"] == ["192.0.2.10", "cp1.lab.example", "api.lab.example"]


def test_custom_pod_network():
    _, docs = render("v1.35.0", kubelab_pod_network_cidr="10.123.0.0/16", kubelab_service_cidr="10.100.0.0/16")
    assert docs["ClusterConfiguration"]["networking"]["podSubnet"] == "10.123.0.0/16"
    assert docs["ClusterConfiguration"]["networking"]["serviceSubnet"] == "10.100.0.0/16"
