"""Every node's kubelet registers with its inventory address (issue 13, item 4).

* kube_packages writes ``KUBELET_EXTRA_ARGS=--node-ip=<kubelab_node_ip>`` to
  the file the kubelet unit's kubeadm drop-in reads (/etc/default/kubelet on
  Debian, /etc/sysconfig/kubelet on EL) before kubeadm init/join; the
  control plane's kubeadm configuration does not repeat the flag
  (tests/unit/test_kubeadm_config.py).
* The kubelet stand-in takes the address as the real kubelet does
  (kubernetes/kubernetes pkg/kubelet/nodestatus/setters.go ``NodeAddress``,
  ``validateNodeIP``): a ``--node-ip`` that is no address of the node is
  refused (the Node gets no addresses), without one the default route's
  address is used.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import shlex
from pathlib import Path

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
ROLE = ROOT / "roles" / "kube_packages"
STANDIN = ROOT / "molecule" / "resources" / "standins" / "pkgs" / "kubelet"


def load(path):
    return yaml.safe_load(path.read_text())


def templar(os_file, probe_lines=(), **extra):
    variables = {}
    for path in (ROOT / "roles" / "kubelab" / "defaults" / "main.yml", ROLE / "defaults" / "main.yml",
                 ROLE / "vars" / "main.yml", ROLE / "vars" / os_file):
        for key, val in load(path).items():
            variables[key] = trust_as_template(val) if isinstance(val, str) else val
    variables.update({"kubelab_node_ip": "192.0.2.11", "__kube_packages_probe": {"stdout_lines": list(probe_lines)}})
    variables.update(extra)
    return Templar(loader=DataLoader(), variables=variables)


def value(t, expr):
    return t.template(trust_as_template("{{ %s }}" % expr))


def dropin_reads(path):
    text = (STANDIN / "root/usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf").read_text()
    return f"EnvironmentFile=-{path}" in text and "$KUBELET_EXTRA_ARGS" in text


@pytest.mark.parametrize("os_file, path", [("Debian-12.yml", "/etc/default/kubelet"),
                                           ("RedHat.yml", "/etc/sysconfig/kubelet")])
def test_kubelet_env_file_carries_the_inventory_address(os_file, path):
    t = templar(os_file)
    assert value(t, "__kube_packages_kubelet_env_file") == path
    assert dropin_reads(path)  # the kubelet unit reads that file
    content = value(t, "__kube_packages_kubelet_env_content")
    line = [ln for ln in content.splitlines() if not ln.startswith("#")]
    assert line == ['KUBELET_EXTRA_ARGS="--node-ip=192.0.2.11"']
    t = templar(os_file, kube_packages_kubelet_extra_args=["--v=2"])
    assert 'KUBELET_EXTRA_ARGS="--node-ip=192.0.2.11 --v=2"\n' in value(t, "__kube_packages_kubelet_env_content")
    t = templar(os_file, kube_packages_kubelet_node_ip="")
    assert 'KUBELET_EXTRA_ARGS=""\n' in value(t, "__kube_packages_kubelet_env_content")


def systemd_env_value(content, name):
    """One variable of an EnvironmentFile as systemd reads a double-quoted value
    (systemd/systemd src/basic/env-file.c parse_env_file_internal, states
    DOUBLE_QUOTE_VALUE / DOUBLE_QUOTE_VALUE_ESCAPE, main at 0002453b: inside
    double quotes a backslash before one of SHELL_NEED_ESCAPE '"', '\\', '`', '$'
    yields that character, before any other character stays; a newline is part
    of the value). Returns (value, what follows the closing quote on its line)."""
    start = content.index(name + '="') + len(name) + 2
    out, i = [], start
    while content[i] != '"':
        if content[i] == "\\" and content[i + 1] in '"\\`$':
            i += 1
        out.append(content[i])
        i += 1
    return "".join(out), content[i + 1:].split("\n", 1)[0]


@pytest.mark.parametrize("arg", ['--x=a"b', "--x=back\\slash", '--x=\\"', "--v=2"])
def test_kubelet_env_line_is_quoted_for_systemd(arg):
    content = value(templar("RedHat.yml", kube_packages_kubelet_extra_args=[arg]),
                    "__kube_packages_kubelet_env_content")
    lines = [ln for ln in content.splitlines() if not ln.startswith("#")]
    assert len(lines) == 1 and lines[0].startswith('KUBELET_EXTRA_ARGS="') and lines[0].endswith('"')
    got, rest = systemd_env_value(content, "KUBELET_EXTRA_ARGS")
    assert got == "--node-ip=192.0.2.11 " + arg
    assert rest == ""


def test_kubelet_env_file_is_written_only_when_it_differs():
    t = templar("RedHat.yml")
    sha1 = value(t, "__kube_packages_kubelet_env_content | hash('sha1')")
    same = ["file./etc/sysconfig/kubelet=regular file:644:root:root:" + sha1]
    package_default = ["file./etc/sysconfig/kubelet=regular file:644:root:root:" + "0" * 40]
    assert value(templar("RedHat.yml", same), "__kube_packages_need_kubelet_env") is False
    assert value(templar("RedHat.yml", package_default), "__kube_packages_need_kubelet_env") is True
    assert value(templar("RedHat.yml", ["file./etc/sysconfig/kubelet=<absent>"]),
                 "__kube_packages_need_kubelet_env") is True


def test_the_file_is_written_before_kubeadm_and_read_by_the_probe():
    tasks = load(ROLE / "tasks" / "main.yml")
    names = [t["name"] for t in tasks]
    write = names.index("Give the kubelet its node IP (KUBELET_EXTRA_ARGS)")
    assert names.index("Repository, packages and holds") < write  # after the package's own copy
    task = tasks[write]
    assert task["ansible.builtin.copy"]["dest"] == "{{ __kube_packages_kubelet_env_file }}"
    assert task["ansible.builtin.copy"]["content"] == "{{ __kube_packages_kubelet_env_content }}"
    assert task["when"] == "__kube_packages_need_kubelet_env | bool"
    assert "__kube_packages_kubelet_env_file" in tasks[names.index(
        "Read the Kubernetes packages, repository and kubelet state")]["ansible.builtin.raw"]
    # the kube_packages role runs in the nodes stage, before control_plane and workers
    nodes = load(ROOT / "playbooks" / "nodes.yml")
    assert any(r.get("role") == "kube_packages" for play in nodes for r in play.get("roles", []))


# ---- the kubelet stand-in -------------------------------------------------

@pytest.fixture
def kubelet(tmp_path, monkeypatch):
    path = STANDIN / "root" / "usr" / "bin" / "kubelet"
    loader = importlib.machinery.SourceFileLoader("kubelet_standin", str(path))
    spec = importlib.util.spec_from_loader("kubelet_standin", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    monkeypatch.setattr(module, "ROOT", str(tmp_path))
    logs = []
    monkeypatch.setattr(module, "log", lambda level, msg, **kv: logs.append((level, msg, kv)))
    module.logs = logs
    run_dir = tmp_path / "run" / "kubelab-standin"
    run_dir.mkdir(parents=True)

    def host(addresses, default_route):
        (run_dir / "interface-addresses").write_text("".join(a + "\n" for a in addresses))
        (run_dir / "default-route-address").write_text(default_route + "\n")

    module.host = host
    return module


# A multi-NIC worker: its inventory address on eth0, the default route on eth1.
MULTI_NIC = (["127.0.0.1", "192.0.2.11", "198.51.100.23", "fe80::1"], "198.51.100.23")


def flags_from_env_file(kubelet, content):
    """What systemd passes: $KUBELET_EXTRA_ARGS split at white space, as the drop-in's ExecStart."""
    value = next(ln.split("=", 1)[1] for ln in content.splitlines() if ln.startswith("KUBELET_EXTRA_ARGS="))
    return kubelet.parse_args(shlex.split(value))


def test_the_roles_env_file_makes_the_kubelet_use_the_inventory_address(kubelet):
    kubelet.host(*MULTI_NIC)
    content = value(templar("RedHat.yml", kubelab_node_ip="192.0.2.11"), "__kube_packages_kubelet_env_content")
    flags = flags_from_env_file(kubelet, content)
    ip = kubelet.ipaddress.ip_address(flags["node-ip"])
    assert kubelet.node_addresses("w1", "w1", ip) == [
        {"type": "InternalIP", "address": "192.0.2.11"}, {"type": "Hostname", "address": "w1"}]


def test_without_node_ip_the_default_route_address_is_used(kubelet, monkeypatch):
    kubelet.host(*MULTI_NIC)
    monkeypatch.setattr(kubelet.socket, "getaddrinfo", lambda *a, **k: (_ for _ in ()).throw(kubelet.socket.gaierror()))
    assert kubelet.node_addresses("w1", "w1", None)[0] == {"type": "InternalIP", "address": "198.51.100.23"}


def test_without_node_ip_a_resolvable_node_name_wins_over_the_default_route(kubelet, monkeypatch):
    """Step 3 of NodeAddress: net.LookupIP(node name), the first address validateNodeIP accepts (IPv4 first)."""
    kubelet.host(*MULTI_NIC)
    answers = [(10, 1, 6, "", ("fe80::1", 0, 0, 0)), (2, 1, 6, "", ("127.0.1.1", 0)), (2, 1, 6, "", ("192.0.2.11", 0))]
    monkeypatch.setattr(kubelet.socket, "getaddrinfo", lambda *a, **k: answers)
    assert kubelet.node_addresses("w1", "w1", None)[0] == {"type": "InternalIP", "address": "192.0.2.11"}


def test_the_name_is_looked_up_in_etc_hosts_first_in_file_order(kubelet, monkeypatch, tmp_path):
    """Go's resolver: /etc/hosts lines naming the node, in file order, before DNS."""
    kubelet.host(*MULTI_NIC)
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "hosts").write_text(
        "127.0.0.1 localhost\n127.0.1.1 w1\n198.51.100.23 w1.lab w1 # podman\n"
        "# BEGIN kubelab nodes\n192.0.2.11 w1.lab w1\n")
    monkeypatch.setattr(kubelet.socket, "getaddrinfo", lambda *a, **k: [(2, 1, 6, "", ("192.0.2.11", 0))])
    # loopback skipped; the first valid line wins, DNS is not asked
    assert kubelet.node_addresses("w1", "w1", None)[0] == {"type": "InternalIP", "address": "198.51.100.23"}


@pytest.mark.parametrize("node_ip, message", [
    ("203.0.113.9", 'node IP: "203.0.113.9" not found in the host\'s network interfaces'),
    ("127.0.0.1", "nodeIP can't be loopback address"),
    ("fe80::1", "nodeIP can't be a link-local unicast address"),
    ("224.0.0.5", "nodeIP can't be a multicast address"),
    ("0.0.0.0", "nodeIP can't be an all zeros address"),
])
def test_a_node_ip_the_node_does_not_have_is_refused(kubelet, node_ip, message):
    kubelet.host(*MULTI_NIC)
    assert kubelet.node_addresses("w1", "w1", kubelet.ipaddress.ip_address(node_ip)) == []
    assert ("E", "Failed to set some node status fields",
            {"err": "failed to validate nodeIP: " + message, "node": "w1"}) in kubelet.logs


def test_an_unparsable_node_ip_stops_the_kubelet(kubelet, tmp_path):
    config = tmp_path / "var" / "lib" / "kubelet"
    config.mkdir(parents=True)
    (config / "config.yaml").write_text("kind: KubeletConfiguration\nfailCgroupV1: false\n")
    (tmp_path / "sys" / "fs" / "cgroup").mkdir(parents=True)
    (tmp_path / "sys" / "fs" / "cgroup" / "cgroup.controllers").write_text("cpu\n")
    (tmp_path / "etc" / "kubernetes").mkdir(parents=True)
    (tmp_path / "etc" / "kubernetes" / "kubelet.conf").write_text("{}\n")
    sock_dir = tmp_path / "var" / "run" / "crio"
    sock_dir.mkdir(parents=True)
    import socket

    s = socket.socket(socket.AF_UNIX)
    s.bind(str(sock_dir / "crio.sock"))
    s.close()
    with pytest.raises(kubelet.KubeletError, match='bad --node-ip "10.0.0.300"'):
        kubelet.run(["--config=/var/lib/kubelet/config.yaml", "--node-ip=10.0.0.300"])
