"""The kubeadm and kubelet stand-ins (TEST DOUBLES in
molecule/resources/standins/pkgs/) run for real on this host: each "node" is a
temporary root directory (KUBELAB_STANDIN_ROOT, a test-only switch), systemctl
is played by a small script that starts the stand-in units as processes, and
the API server is the emulator on 127.0.0.1. Loopback only.

Proves the contract in pkgs/kubeadm/CONTRACT.md and pkgs/kubelet/CONTRACT.md:
init writes a real CA and kubeconfigs and serves the API over HTTPS; the
kubelet registers its Node; token create prints a join command whose CA hash
is the CA's; join refuses a wrong hash, a wrong secret, an unknown token, an
expired token and a second join; reset cleans up.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import ssl
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from fixtures_kapi import kubectl_binary

pytestmark = [pytest.mark.slow, pytest.mark.root]  # kubeadm preflight IsPrivilegedUser

STANDINS = Path(__file__).resolve().parents[2] / "molecule" / "resources" / "standins"
KUBEADM = STANDINS / "pkgs" / "kubeadm" / "root" / "usr" / "bin" / "kubeadm"
KUBELET = STANDINS / "pkgs" / "kubelet" / "root" / "usr" / "bin" / "kubelet"
APISERVER = STANDINS / "pkgs" / "kubeadm" / "root" / "usr" / "lib" / "kubelab-standins" / "kubeadm" / "kube-apiserver"

# `uname -r` of the OSes kubelab supports (what the test nodes' wrapper prints).
EL8_KERNEL = "4.18.0-553.el8_10.x86_64"
EL9_KERNEL = "5.14.0-503.14.1.el9_5.x86_64"
DEBIAN12_KERNEL = "6.1.0-28-amd64"
PROC_CGROUPS_V1 = textwrap.dedent(
    """\
    #subsys_name\thierarchy\tnum_cgroups\tenabled
    cpuset\t3\t1\t1
    cpu\t1\t1\t1
    cpuacct\t2\t1\t1
    blkio\t7\t1\t1
    memory\t4\t1\t1
    devices\t5\t1\t1
    freezer\t6\t1\t1
    pids\t8\t1\t1
    hugetlb\t9\t1\t1
    """
)

# Plays systemctl for the stand-in units: what the unit files in the
# packages would run, as processes whose pids live under the node's root.
FAKE_SYSTEMCTL = textwrap.dedent(
    """\
    import os, shlex, signal, subprocess, sys, time
    root = os.environ["KUBELAB_STANDIN_ROOT"]
    state = os.path.join(root, "run", "fake-systemd")
    os.makedirs(state, exist_ok=True)
    args = [a for a in sys.argv[1:] if not a.startswith("-")]
    verb, units = args[0], args[1:]
    with open(os.path.join(state, "calls.log"), "a") as fh:
        fh.write(" ".join(sys.argv[1:]) + "\\n")

    def env_file(path, var):
        try:
            with open(root + path) as fh:
                for line in fh:
                    if line.startswith(var + "="):
                        return shlex.split(line.split("=", 1)[1].strip().strip('"'))
        except OSError:
            pass
        return []

    def command(unit):
        if unit.startswith("kubelet"):
            return [sys.executable, os.environ["T_KUBELET"],
                    "--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf",
                    "--kubeconfig=/etc/kubernetes/kubelet.conf", "--config=/var/lib/kubelet/config.yaml"] \\
                + env_file("/var/lib/kubelet/kubeadm-flags.env", "KUBELET_KUBEADM_ARGS") \\
                + env_file("/etc/default/kubelet", "KUBELET_EXTRA_ARGS")
        return [sys.executable, os.environ["T_APISERVER"]]

    def stop(unit):
        pidfile = os.path.join(state, unit + ".pid")
        if os.path.exists(pidfile):
            pid = int(open(pidfile).read())
            try:
                os.kill(pid, signal.SIGTERM)
                for _ in range(100):
                    os.kill(pid, 0)
                    time.sleep(0.05)
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.unlink(pidfile)

    def start(unit):
        log = open(os.path.join(state, unit + ".log"), "a")
        proc = subprocess.Popen(command(unit), stdout=log, stderr=log, start_new_session=True)
        open(os.path.join(state, unit + ".pid"), "w").write(str(proc.pid))

    for unit in units:
        if unit.startswith("kubelab-standin-controller-manager"):
            # recorded only: the controllers double has tests of its own, and
            # objects it would create are not what these tests look at
            continue
        if verb in ("restart", "start") or (verb == "enable" and "--now" in sys.argv):
            stop(unit)
            start(unit)
        elif verb == "stop" or (verb == "disable" and "--now" in sys.argv):
            stop(unit)
    """
)


def node_address(name: str) -> str:
    """The stand-in node's own (documentation-range) address; nothing is sent to it."""
    return {"cp1": "192.0.2.10", "w1": "192.0.2.12", "w2": "192.0.2.13"}.get(name, "192.0.2.99")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Node:
    """A stand-in node: a root directory with what the nodes stage provides."""

    def __init__(self, base: Path, name: str, systemctl: Path, kernel: str = DEBIAN12_KERNEL, cgroup: int = 2):
        self.name = name
        self.root = base / name
        self.systemctl = systemctl
        for d in ("etc/default", "etc/cni/net.d", "proc/sys/net/ipv4", "sys/fs/cgroup", "var/run/crio", "bin"):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        (self.root / "proc/sys/net/ipv4/ip_forward").write_text("1\n")
        if cgroup == 2:
            (self.root / "sys/fs/cgroup/cgroup.controllers").write_text("cpuset cpu io memory hugetlb pids rdma misc\n")
        else:  # the node boots cgroup v1: no unified hierarchy, controllers in /proc/cgroups
            (self.root / "proc/cgroups").write_text(PROC_CGROUPS_V1)
        # What the node's PATH holds for kubeadm: `uname -r` of the OS the
        # node stands for (as the test nodes' wrapper) and the kubelet.
        self.bin = self.root / "bin"
        (self.bin / "uname").write_text(f"#!/bin/sh\n[ \"$1\" = -r ] && {{ echo {kernel}; exit 0; }}\nexec /bin/uname \"$@\"\n")
        (self.bin / "kubelet").write_text(f"#!/bin/sh\nexec {sys.executable} {KUBELET} \"$@\"\n")
        for tool in ("uname", "kubelet"):
            (self.bin / tool).chmod(0o755)
        (self.root / "etc/cni/net.d/10-flannel.conflist").write_text("{}\n")
        # the node's interface addresses as the kubelet stand-in reads them under its root
        # (the kubelet refuses a --node-ip the node does not have, and a loopback one)
        (self.root / "run/kubelab-standin").mkdir(parents=True, exist_ok=True)
        (self.root / "run/kubelab-standin/interface-addresses").write_text(f"127.0.0.1\n{node_address(name)}\n")
        (self.root / "run/kubelab-standin/default-route-address").write_text(node_address(name) + "\n")
        # what kubeadm init's NumCPU and Mem checks read (the stand-in's test-only inputs under its root)
        (self.root / "run/kubelab-standin/available-cpus").write_text("2\n")
        (self.root / "proc/meminfo").write_text("MemTotal:        4014532 kB\nMemFree:         3000000 kB\n")
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(self.root / "var/run/crio/crio.sock"))  # crio's socket, as the nodes stage leaves it
        sock.close()

    def path(self, p: str) -> Path:
        return self.root / p.lstrip("/")

    def env(self) -> dict:
        return dict(os.environ, KUBELAB_STANDIN_ROOT=str(self.root),
                    KUBELAB_STANDIN_SYSTEMCTL=str(self.systemctl),
                    KUBELAB_STANDIN_DISCOVERY_TIMEOUT="10",
                    T_KUBELET=str(KUBELET), T_APISERVER=str(APISERVER),
                    PYTHONPATH=str(STANDINS), PATH=str(self.bin) + os.pathsep + os.environ.get("PATH", ""))

    def kubeadm(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, str(KUBEADM), *args], capture_output=True, text=True,
                              env=self.env(), timeout=300, stdin=subprocess.DEVNULL)

    def api(self, method: str, path: str, body=None, content_type: str = "application/json"):
        """Call the API server as kubectl would with admin.conf: the server is
        verified against the CA in the kubeconfig, the client cert is sent."""
        config = yaml.safe_load(self.path("/etc/kubernetes/admin.conf").read_text())
        cluster, user = config["clusters"][0]["cluster"], config["users"][0]["user"]
        ctx = ssl.create_default_context(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
        pem = self.root / "client.pem"
        pem.write_bytes(base64.b64decode(user["client-certificate-data"]) + base64.b64decode(user["client-key-data"]))
        pem.chmod(0o600)
        ctx.load_cert_chain(str(pem))
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(cluster["server"] + path, data=data, method=method,
                                     headers={"Content-Type": content_type} if data else {})
        try:
            with urllib.request.urlopen(req, timeout=10, context=ctx) as resp:  # noqa: S310 - loopback only
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")

    def get(self, path: str):
        """The object at PATH, or None when the API says 404."""
        code, body = self.api("GET", path)
        if code == 404:
            return None
        assert code == 200, body
        return body

    def service_running(self, unit: str) -> bool:
        pidfile = self.path(f"/run/fake-systemd/{unit}.pid")
        if not pidfile.exists():
            return False
        try:
            os.kill(int(pidfile.read_text()), 0)
            return True
        except ProcessLookupError:
            return False

    def stop_all(self) -> None:
        for unit in ("kubelet", "kubelab-standin-apiserver.service"):
            subprocess.run([str(self.systemctl), "stop", unit], env=self.env(), check=False)


def ca_hash(ca_pem: bytes) -> str:
    """sha256 of the CA's SubjectPublicKeyInfo, computed independently of the stand-in."""
    pub = subprocess.run(["openssl", "x509", "-noout", "-pubkey"], input=ca_pem, capture_output=True, check=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=pub, capture_output=True, check=True).stdout
    return "sha256:" + hashlib.sha256(der).hexdigest()


def kubeadm_config(port: int) -> str:
    return textwrap.dedent(
        f"""\
        apiVersion: kubeadm.k8s.io/v1beta4
        kind: InitConfiguration
        bootstrapTokens:
          - groups: [system:bootstrappers:kubeadm:default-node-token]
            ttl: 15m
            usages: [signing, authentication]
        localAPIEndpoint:
          advertiseAddress: 127.0.0.1
          bindPort: {port}
        nodeRegistration:
          name: cp1
          criSocket: unix:///var/run/crio/crio.sock
          kubeletExtraArgs:
            - name: node-ip
              value: 192.0.2.10
        ---
        apiVersion: kubeadm.k8s.io/v1beta4
        kind: ClusterConfiguration
        clusterName: kubelab
        kubernetesVersion: v1.35.0
        networking:
          podSubnet: 10.244.0.0/16
          serviceSubnet: 10.96.0.0/12
          dnsDomain: cluster.local
        apiServer:
          extraArgs:
            - name: bind-address
              value: 127.0.0.1
          certSANs: [cp1.example.test]
        ---
        apiVersion: kubelet.config.k8s.io/v1beta1
        kind: KubeletConfiguration
        cgroupDriver: systemd
        clusterDNS: [10.96.0.10]
        failCgroupV1: false
        nodeStatusUpdateFrequency: 1s
        """
    )


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl CLI")
    base = tmp_path_factory.mktemp("standin-nodes")
    systemctl = base / "systemctl.py"
    systemctl.write_text(FAKE_SYSTEMCTL)
    wrapper = base / "systemctl"
    wrapper.write_text(f"#!/bin/sh\nexec {sys.executable} {systemctl} \"$@\"\n")
    wrapper.chmod(0o755)
    nodes = {name: Node(base, name, wrapper) for name in ("cp1", "w1", "w2")}
    for node in nodes.values():
        node.systemctl = wrapper
    port = free_port()
    config = nodes["cp1"].path("/etc/kubernetes/kubeadm-config.yaml")
    config.parent.mkdir(parents=True)
    config.write_text(kubeadm_config(port))
    yield {"nodes": nodes, "port": port, "config": "/etc/kubernetes/kubeadm-config.yaml"}
    for node in nodes.values():
        node.stop_all()


def wait_for(fn, timeout=20.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


# The tests below run in order on one lab (module scope), like the roles would.

def test_version():
    out = subprocess.run([sys.executable, str(KUBEADM), "version", "-o", "short"], capture_output=True, text=True)
    assert out.stdout == "v1.35.0\n"
    out = subprocess.run([sys.executable, str(KUBELET), "--version"], capture_output=True, text=True)
    assert out.stdout == "Kubernetes v1.35.0\n"


def test_init_refuses_missing_or_invalid_config(lab, tmp_path):
    cp = lab["nodes"]["cp1"]
    missing = cp.kubeadm("init", "--config", "/etc/kubernetes/absent.yaml")
    assert missing.returncode == 1 and "absent.yaml" in missing.stderr and "no such file" in missing.stderr.lower()
    bad = cp.path("/etc/kubernetes/bad.yaml")
    bad.write_text("apiVersion: kubeadm.k8s.io/v1beta9\nkind: InitConfiguration\n")
    out = cp.kubeadm("init", "--config", "/etc/kubernetes/bad.yaml")
    assert out.returncode == 1 and 'no kind "InitConfiguration" is registered for version "kubeadm.k8s.io/v1beta9"' in out.stderr
    bad.write_text(kubeadm_config(1).replace("- name: node-ip\n      value: 192.0.2.10", "node-ip: 192.0.2.10"))
    out = cp.kubeadm("init", "--config", "/etc/kubernetes/bad.yaml")
    assert out.returncode == 1 and "kubeletExtraArgs" in out.stderr
    bad.write_text(kubeadm_config(1).replace("v1.35.0", "v1.30.2"))
    out = cp.kubeadm("init", "--config", "/etc/kubernetes/bad.yaml")
    assert out.returncode == 1 and "control plane version >= 1.34.0" in out.stderr
    assert not cp.path("/etc/kubernetes/admin.conf").exists()
    assert not cp.path("/etc/kubernetes/pki/ca.crt").exists()


def test_init_builds_the_control_plane(lab):
    cp = lab["nodes"]["cp1"]
    out = cp.kubeadm("init", "--config", lab["config"])
    assert out.returncode == 0, out.stderr + out.stdout
    assert "Your Kubernetes control-plane has initialized successfully!" in out.stdout
    assert re.search(rf"kubeadm join 127\.0\.0\.1:{lab['port']} --token [a-z0-9]{{6}}\.[a-z0-9]{{16}} \\", out.stdout)

    admin = cp.path("/etc/kubernetes/admin.conf")
    assert stat.S_IMODE(admin.stat().st_mode) == 0o600
    ca = cp.path("/etc/kubernetes/pki/ca.crt").read_bytes()
    text = subprocess.run(["openssl", "x509", "-noout", "-text"], input=ca, capture_output=True, check=True).stdout
    assert b"CA:TRUE" in text and b"Subject: CN = kubernetes" in text
    serving = subprocess.run(["openssl", "x509", "-noout", "-text", "-in", str(cp.path("/etc/kubernetes/pki/apiserver.crt"))],
                             capture_output=True, check=True, text=True).stdout
    assert cp.get("/apis/apps/v1/namespaces/kube-system/daemonsets/kube-proxy")["metadata"]["name"] == "kube-proxy"
    assert "IP Address:127.0.0.1" in serving and "IP Address:10.96.0.1" in serving and "DNS:cp1.example.test" in serving
    kubelet_cfg = cp.path("/var/lib/kubelet/config.yaml").read_text()
    assert "failCgroupV1: false" in kubelet_cfg and "cgroupDriver: systemd" in kubelet_cfg
    flags = cp.path("/var/lib/kubelet/kubeadm-flags.env").read_text()
    assert "--node-ip=192.0.2.10" in flags and "--hostname-override=cp1" in flags
    assert cp.path("/etc/kubernetes/manifests/kube-apiserver.yaml").exists()
    assert cp.path("/etc/kubernetes/kubelet.conf").exists()

    # kubectl over HTTPS, verifying the server against the generated CA
    node = wait_for(lambda: (cp.get("/api/v1/nodes/cp1") or {}).get("spec", {}).get("podCIDR") and cp.get("/api/v1/nodes/cp1"),
                    what="Node cp1 with its podCIDR")
    assert "node-role.kubernetes.io/control-plane" in node["metadata"]["labels"]
    assert {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"} in node["spec"]["taints"]
    ready = {c["type"]: c["status"] for c in node["status"]["conditions"]}
    assert ready["Ready"] == "True"
    assert {"type": "InternalIP", "address": "192.0.2.10"} in node["status"]["addresses"]
    assert node["spec"]["podCIDR"] == "10.244.0.0/24"

    if kubectl_binary():
        listed = subprocess.run([kubectl_binary(), "--kubeconfig", str(cp.path("/etc/kubernetes/admin.conf")),
                                 "get", "nodes"], capture_output=True, text=True, timeout=60)
        assert listed.stdout.splitlines()[1].split()[:3] == ["cp1", "Ready", "control-plane"], listed.stderr

    info = cp.get("/api/v1/namespaces/kube-public/configmaps/cluster-info")
    assert "kubeconfig" in info["data"]
    assert any(k.startswith("jws-kubeconfig-") for k in info["data"])
    dns = cp.get("/api/v1/namespaces/kube-system/services/kube-dns")
    assert dns["spec"]["clusterIP"] == "10.96.0.10"
    assert sorted((p["port"], p["protocol"]) for p in dns["spec"]["ports"]) == [(53, "TCP"), (53, "UDP"), (9153, "TCP")]
    assert cp.get("/api/v1/namespaces/default/services/kubernetes")["spec"]["clusterIP"] == "10.96.0.1"


def test_kubelet_heartbeats(lab):
    cp = lab["nodes"]["cp1"]

    def beat():
        return [c["lastHeartbeatTime"] for c in cp.get("/api/v1/nodes/cp1")["status"]["conditions"] if c["type"] == "Ready"][0]

    first = beat()
    assert wait_for(lambda: beat() != first, timeout=10, what="a newer heartbeat")
    lease = cp.get("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/cp1")
    assert lease["spec"]["holderIdentity"] == "cp1"


def test_second_init_is_refused(lab):
    cp = lab["nodes"]["cp1"]
    out = cp.kubeadm("init", "--config", lab["config"])
    assert out.returncode == 1
    assert "[ERROR FileAvailable--etc-kubernetes-admin.conf]" in out.stderr
    assert f"[ERROR Port-{lab['port']}]" in out.stderr
    assert "[ERROR DirAvailable--etc-kubernetes-manifests]" in out.stderr


def _token(cp, ttl="10m"):
    out = cp.kubeadm("token", "create", "--ttl", ttl, "--print-join-command")
    assert out.returncode == 0, out.stderr
    m = re.fullmatch(r"kubeadm join (\S+) --token (\S+) --discovery-token-ca-cert-hash (sha256:[0-9a-f]{64}) \n", out.stdout)
    assert m, out.stdout
    return m.groups()


def test_token_create_prints_the_pinned_ca_hash(lab):
    cp = lab["nodes"]["cp1"]
    endpoint, token, ca = _token(cp)
    assert endpoint == f"127.0.0.1:{lab['port']}"
    assert ca == ca_hash(cp.path("/etc/kubernetes/pki/ca.crt").read_bytes())
    token_id, secret = token.split(".")
    stored = cp.get(f"/api/v1/namespaces/kube-system/secrets/bootstrap-token-{token_id}")
    data = {k: base64.b64decode(v).decode() for k, v in stored["data"].items()}
    assert stored["type"] == "bootstrap.kubernetes.io/token"
    assert data["token-secret"] == secret and data["usage-bootstrap-authentication"] == "true"
    expires = time.mktime(time.strptime(data["expiration"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    assert 500 < expires - time.time() <= 600
    listed = cp.kubeadm("token", "list")
    assert token in listed.stdout and listed.stdout.startswith("TOKEN")


def _join(node, endpoint, token, ca):
    return node.kubeadm("join", endpoint, "--token", token, "--discovery-token-ca-cert-hash", ca, "--node-name", node.name)


def test_join_refuses_a_wrong_ca_hash(lab):
    cp, w1 = lab["nodes"]["cp1"], lab["nodes"]["w1"]
    endpoint, token, ca = _token(cp)
    wrong = "sha256:" + hashlib.sha256(b"not the CA").hexdigest()
    out = _join(w1, endpoint, token, wrong)
    assert out.returncode == 1
    assert f'none of the public keys "{ca}" are pinned' in out.stderr
    assert not w1.path("/etc/kubernetes/kubelet.conf").exists()
    assert not w1.path("/etc/kubernetes/pki/ca.crt").exists()


def test_join_refuses_a_wrong_secret_and_an_unknown_token(lab):
    cp, w1 = lab["nodes"]["cp1"], lab["nodes"]["w1"]
    endpoint, token, ca = _token(cp)
    forged = token.split(".")[0] + ".0123456789abcdef"
    out = _join(w1, endpoint, forged, ca)
    assert out.returncode == 1 and "failed to verify JWS signature" in out.stderr
    out = _join(w1, endpoint, "zzzzzz.0123456789abcdef", ca)
    assert out.returncode == 1
    assert 'could not find a JWS signature in the cluster-info ConfigMap for token ID "zzzzzz"' in out.stderr
    assert not w1.path("/etc/kubernetes/kubelet.conf").exists()


def test_join_refuses_an_expired_token(lab):
    cp, w1 = lab["nodes"]["cp1"], lab["nodes"]["w1"]
    endpoint, token, ca = _token(cp, ttl="1s")
    time.sleep(2.1)
    out = _join(w1, endpoint, token, ca)
    assert out.returncode == 1
    assert f'for token ID "{token.split(".")[0]}"' in out.stderr
    assert not w1.path("/etc/kubernetes/kubelet.conf").exists()


def test_join_with_the_right_token_and_hash(lab):
    cp, w1 = lab["nodes"]["cp1"], lab["nodes"]["w1"]
    w1.path("/etc/default/kubelet").write_text("KUBELET_EXTRA_ARGS=--node-ip=192.0.2.12\n")
    endpoint, token, ca = _token(cp)
    out = _join(w1, endpoint, token, ca)
    assert out.returncode == 0, out.stderr + out.stdout
    assert "This node has joined the cluster" in out.stdout
    assert w1.path("/etc/kubernetes/pki/ca.crt").read_bytes() == cp.path("/etc/kubernetes/pki/ca.crt").read_bytes()
    assert stat.S_IMODE(w1.path("/etc/kubernetes/kubelet.conf").stat().st_mode) == 0o600
    assert "failCgroupV1: false" in w1.path("/var/lib/kubelet/config.yaml").read_text()
    node = wait_for(lambda: (cp.get("/api/v1/nodes/w1") or {}).get("spec", {}).get("podCIDR") and cp.get("/api/v1/nodes/w1"),
                    what="Node w1")
    assert {"type": "InternalIP", "address": "192.0.2.12"} in node["status"]["addresses"]
    assert node["spec"]["podCIDR"] == "10.244.1.0/24"
    assert "taints" not in node["spec"]
    assert "node-role.kubernetes.io/control-plane" not in node["metadata"]["labels"]


def test_second_join_is_refused(lab):
    cp, w1 = lab["nodes"]["cp1"], lab["nodes"]["w1"]
    endpoint, token, ca = _token(cp)
    out = _join(w1, endpoint, token, ca)
    assert out.returncode == 1
    assert "[ERROR FileAvailable--etc-kubernetes-kubelet.conf]: /etc/kubernetes/kubelet.conf already exists" in out.stderr


def test_a_kubelet_that_never_started_leaves_a_half_joined_worker(lab):
    """kubeadm join writes ca.crt and config.yaml, then starts the kubelet; its TLS
    bootstrap writes kubelet.conf. A kubelet that never ran leaves no kubelet.conf,
    and the next join is refused by FileAvailable--etc-kubernetes-pki-ca.crt."""
    cp = lab["nodes"]["cp1"]
    failing = cp.root.parent / "systemctl-kubelet-fails"
    failing.write_text(f"#!/bin/sh\n[ \"$1\" = restart ] && [ \"$2\" = kubelet ] && {{ echo 'Job for kubelet.service failed' >&2; exit 1; }}\n"
                       f"exec {cp.systemctl} \"$@\"\n")
    failing.chmod(0o755)
    w3 = Node(cp.root.parent, "w3", failing)
    endpoint, token, ca = _token(cp)
    out = _join(w3, endpoint, token, ca)
    assert out.returncode == 1
    assert "error execution phase kubelet-start" in out.stderr
    assert w3.path("/etc/kubernetes/pki/ca.crt").exists() and w3.path("/var/lib/kubelet/config.yaml").exists()
    assert not w3.path("/etc/kubernetes/kubelet.conf").exists()
    out = _join(w3, endpoint, token, ca)
    assert out.returncode == 1
    assert "\t[ERROR FileAvailable--etc-kubernetes-pki-ca.crt]: /etc/kubernetes/pki/ca.crt already exists" in out.stderr
    assert "FileAvailable--etc-kubernetes-kubelet.conf" not in out.stderr
    assert w3.kubeadm("reset", "-f", "--cri-socket", "unix:///var/run/crio/crio.sock").returncode == 0
    assert not w3.path("/etc/kubernetes/pki/ca.crt").exists()


def test_kubelet_waits_for_its_files(lab, tmp_path):
    w2 = lab["nodes"]["w2"]
    out = subprocess.run([sys.executable, str(KUBELET), "--kubeconfig=/etc/kubernetes/kubelet.conf",
                          "--config=/var/lib/kubelet/config.yaml"], env=w2.env(), capture_output=True, text=True, timeout=30)
    assert out.returncode == 1 and "failed to load kubelet config file" in out.stderr
    w2.path("/var/lib/kubelet").mkdir(parents=True)
    w2.path("/var/lib/kubelet/config.yaml").write_text("apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n")
    out = subprocess.run([sys.executable, str(KUBELET), "--kubeconfig=/etc/kubernetes/kubelet.conf",
                          "--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf",
                          "--config=/var/lib/kubelet/config.yaml"], env=w2.env(), capture_output=True, text=True, timeout=30)
    assert out.returncode == 1 and "unable to load bootstrap kubeconfig" in out.stderr
    w2.path("/sys/fs/cgroup/cgroup.controllers").unlink()  # a cgroup v1 host
    out = subprocess.run([sys.executable, str(KUBELET), "--config=/var/lib/kubelet/config.yaml"],
                         env=w2.env(), capture_output=True, text=True, timeout=30)
    assert out.returncode == 1 and "cgroup v1" in out.stderr
    shutil.rmtree(w2.path("/var/lib/kubelet"))
    w2.path("/sys/fs/cgroup/cgroup.controllers").write_text("cpu\n")


def test_reset_worker_cleans_its_files(lab):
    cp, w1 = lab["nodes"]["cp1"], lab["nodes"]["w1"]
    assert w1.service_running("kubelet")
    out = w1.kubeadm("reset", "-f")
    assert out.returncode == 0, out.stderr
    assert not w1.service_running("kubelet")
    for gone in ("/etc/kubernetes/kubelet.conf", "/etc/kubernetes/pki/ca.crt", "/var/lib/kubelet/config.yaml"):
        assert not w1.path(gone).exists(), gone
    # like real kubeadm, reset leaves the CNI configuration to the operator
    assert w1.path("/etc/cni/net.d/10-flannel.conflist").exists()
    assert "does not perform cleanup of CNI plugin configuration" in out.stdout
    # the Node object stays until someone deletes it (the reset role drains and deletes it first)
    assert cp.get("/api/v1/nodes/w1") is not None

    # a fresh heartbeat: joining under the same name is refused, as kubeadm does
    endpoint, token, ca = _token(cp)
    out = _join(w1, endpoint, token, ca)
    assert out.returncode == 1
    assert 'a Node with name "w1" and status "Ready" already exists in the cluster' in out.stderr
    assert not w1.path("/etc/kubernetes/kubelet.conf").exists()
    # once the heartbeat is older than the node monitor grace period, the name is free again
    stale = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 120))
    patch = {"status": {"conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": stale}]}}
    assert cp.api("PATCH", "/api/v1/nodes/w1/status", patch, "application/strategic-merge-patch+json")[0] == 200
    out = _join(w1, endpoint, token, ca)
    assert out.returncode == 0, out.stderr
    assert w1.kubeadm("reset", "-f").returncode == 0
    assert not w1.service_running("kubelet")


def test_reset_control_plane_stops_the_api_and_deletes_its_state(lab):
    cp = lab["nodes"]["cp1"]
    old_ca = ca_hash(cp.path("/etc/kubernetes/pki/ca.crt").read_bytes())
    calls = cp.path("/run/fake-systemd/calls.log")
    assert "enable --now kubelab-standin-controller-manager.service" in calls.read_text().splitlines()
    out = cp.kubeadm("reset", "-f")
    assert out.returncode == 0, out.stderr
    # the controllers double goes before the API server it talks to
    lines = calls.read_text().splitlines()
    assert lines.index("disable --now kubelab-standin-controller-manager.service") < \
        lines.index("disable --now kubelab-standin-apiserver.service")
    assert not cp.service_running("kubelab-standin-apiserver.service")
    assert not cp.service_running("kubelet")
    assert list(cp.path("/var/lib/etcd").iterdir()) == []
    assert not cp.path("/etc/kubernetes/admin.conf").exists()
    assert not cp.path("/etc/kubernetes/manifests/kube-apiserver.yaml").exists()
    assert cp.path(lab["config"]).exists()  # the operator's kubeadm config is not kubeadm's to delete
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", lab["port"])) != 0
    again = cp.kubeadm("init", "--config", lab["config"], "--skip-phases=addon/kube-proxy")
    assert again.returncode == 0, again.stderr + again.stdout
    assert "kube-proxy" not in again.stdout
    assert ca_hash(cp.path("/etc/kubernetes/pki/ca.crt").read_bytes()) != old_ca
    nodes = wait_for(lambda: cp.get("/api/v1/nodes")["items"], what="Node cp1 again")
    assert [n["metadata"]["name"] for n in nodes] == ["cp1"]  # a fresh cluster: w1 is gone with the old state
    assert cp.get("/apis/apps/v1/namespaces/kube-system/daemonsets/kube-proxy") is None
    assert cp.get("/api/v1/namespaces/kube-system/services/kube-dns")["spec"]["clusterIP"] == "10.96.0.10"


# ------------------------------------------------------------ SystemVerification
# kubeadm 1.35's SystemVerification preflight check (system-validators
# v1.12.1): kernel release patterns (a warning), cgroup v1 with kubelet 1.35
# (an error), --ignore-preflight-errors / ignorePreflightErrors. Each node
# here stops at preflight (ip_forward=0 is an error of its own) unless it
# must pass it, so no API server is started.

def preflight_node(tmp_path, name, kernel, cgroup, ip_forward="1"):
    wrapper = tmp_path / "systemctl"
    wrapper.write_text("#!/bin/sh\nexit 0\n")
    wrapper.chmod(0o755)
    node = Node(tmp_path, name, wrapper, kernel=kernel, cgroup=cgroup)
    node.path("/proc/sys/net/ipv4/ip_forward").write_text(ip_forward + "\n")
    config = node.path("/etc/kubernetes/kubeadm-config.yaml")
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(kubeadm_config(free_port()))
    return node


def join_args(*extra):
    return ("join", "127.0.0.1:1", "--token", "abcdef.0123456789abcdef",
            "--discovery-token-ca-cert-hash", "sha256:" + "0" * 64, *extra)


def sysverify_lines(out, kind):
    return [line for line in (out.stdout + out.stderr).splitlines() if line.startswith(f"\t[{kind} SystemVerification]")]


CGROUP_V1_ERROR = "cgroups v1 support is deprecated and will be removed in a future release"


@pytest.mark.parametrize("command", ["init", "join"])
def test_cgroup_v1_with_kubelet_135_is_a_system_verification_error(tmp_path, command):
    node = preflight_node(tmp_path, "el8-v1", EL8_KERNEL, cgroup=1)
    out = node.kubeadm(*(("init", "--config", "/etc/kubernetes/kubeadm-config.yaml") if command == "init" else join_args()))
    assert out.returncode == 1
    errors = sysverify_lines(out, "ERROR")
    assert len(errors) == 1 and CGROUP_V1_ERROR in errors[0] and "'FailCgroupV1' to 'false'" in errors[0], out.stderr
    # the kernel's mismatch is only a warning, printed on its own line
    assert any(f"kernel release {EL8_KERNEL} is unsupported" in w for w in sysverify_lines(out, "WARNING"))
    assert "[preflight] The system verification failed. Printing the output from the verification:" in out.stdout
    assert re.search(r"KERNEL_VERSION\S*: \S*" + re.escape(EL8_KERNEL), out.stdout)
    assert "error execution phase preflight" in out.stderr
    assert not node.path("/etc/kubernetes/pki/ca.crt").exists()


@pytest.mark.parametrize("how", ["flag", "config"])
def test_ignored_system_verification_becomes_a_warning(tmp_path, how):
    node = preflight_node(tmp_path, "el8-v1", EL8_KERNEL, cgroup=1, ip_forward="0")
    config = node.path("/etc/kubernetes/kubeadm-config.yaml")
    args = ["init", "--config", "/etc/kubernetes/kubeadm-config.yaml"]
    if how == "flag":
        args.append("--ignore-preflight-errors=systemverification")  # case-insensitive, as kubeadm
    else:
        config.write_text(config.read_text().replace(
            "  criSocket: unix:///var/run/crio/crio.sock\n",
            "  criSocket: unix:///var/run/crio/crio.sock\n  ignorePreflightErrors:\n    - SystemVerification\n"))
    out = node.kubeadm(*args)
    assert out.returncode == 1  # stopped by the ip_forward error, which is not ignored
    assert sysverify_lines(out, "ERROR") == []
    assert any(CGROUP_V1_ERROR in w for w in sysverify_lines(out, "WARNING")), out.stdout + out.stderr
    assert "[ERROR FileContent--proc-sys-net-ipv4-ip_forward]" in out.stderr


def test_ignore_all_passes_preflight(tmp_path):
    node = preflight_node(tmp_path, "el8-v1", EL8_KERNEL, cgroup=1, ip_forward="0")
    env = dict(node.env(), KUBELAB_STANDIN_DISCOVERY_TIMEOUT="1")
    out = subprocess.run([sys.executable, str(KUBEADM), *join_args("--ignore-preflight-errors=all")],
                         capture_output=True, text=True, env=env, timeout=120, stdin=subprocess.DEVNULL)
    assert "Some fatal errors occurred" not in out.stderr  # preflight passed; discovery (no API here) failed
    assert any(CGROUP_V1_ERROR in w for w in sysverify_lines(out, "WARNING"))
    assert "[WARNING FileContent--proc-sys-net-ipv4-ip_forward]" in out.stdout + out.stderr


def test_join_ignores_system_verification_when_asked(tmp_path):
    node = preflight_node(tmp_path, "el8-v1", EL8_KERNEL, cgroup=1, ip_forward="0")
    out = node.kubeadm(*join_args("--ignore-preflight-errors=SystemVerification"))
    assert out.returncode == 1 and sysverify_lines(out, "ERROR") == []
    assert any(CGROUP_V1_ERROR in w for w in sysverify_lines(out, "WARNING"))
    assert "[ERROR FileContent--proc-sys-net-ipv4-ip_forward]" in out.stderr


@pytest.mark.parametrize("kernel,warned", [(EL8_KERNEL, True), (EL9_KERNEL, True), (DEBIAN12_KERNEL, False),
                                           ("5.15.0-125-generic", False), ("4.19.0-27-amd64", True)])
def test_kernel_release_is_a_warning_on_cgroup_v2(tmp_path, kernel, warned):
    node = preflight_node(tmp_path, "n", kernel, cgroup=2, ip_forward="0")
    out = node.kubeadm(*join_args())
    assert out.returncode == 1 and "[ERROR FileContent--proc-sys-net-ipv4-ip_forward]" in out.stderr
    assert sysverify_lines(out, "ERROR") == [], out.stderr
    warnings = sysverify_lines(out, "WARNING")
    assert bool([w for w in warnings if f"kernel release {kernel} is unsupported" in w]) == warned, warnings
    assert "The system verification failed" not in out.stdout


def test_cgroup_v1_with_an_older_kubelet_is_a_warning(tmp_path):
    node = preflight_node(tmp_path, "old-kubelet", DEBIAN12_KERNEL, cgroup=1, ip_forward="0")
    (node.bin / "kubelet").write_text("#!/bin/sh\necho 'Kubernetes v1.34.2'\n")
    out = node.kubeadm(*join_args())
    assert sysverify_lines(out, "ERROR") == []
    assert any(CGROUP_V1_ERROR in w for w in sysverify_lines(out, "WARNING"))


def test_missing_required_cgroup_controller_is_an_error(tmp_path):
    node = preflight_node(tmp_path, "no-cpuset", DEBIAN12_KERNEL, cgroup=2)
    node.path("/sys/fs/cgroup/cgroup.controllers").write_text("cpu io memory pids\n")
    out = node.kubeadm(*join_args())
    assert out.returncode == 1
    assert sysverify_lines(out, "ERROR") == ["\t[ERROR SystemVerification]: missing required cgroups: cpuset"], out.stderr


# ------------------------------------------------------------ more of what kubeadm refuses
# validation.go ValidateIgnorePreflightErrors / ValidateMixedArguments, checks.go
# NumCPUCheck / MemCheck, runtime.go DetectCRISocket (see CONTRACT.md).

ALL_WITH_NAMED = ('ignore-preflight-errors: Invalid value: "all,systemverification": '
                  "don't specify individual checks if 'all' is used")


@pytest.mark.parametrize("how", ["flag", "config", "flag+config"])
def test_init_refuses_all_with_a_named_check(tmp_path, how):
    node = preflight_node(tmp_path, "cp", DEBIAN12_KERNEL, cgroup=2)
    node.systemctl.write_text("#!/bin/sh\nexit 1\n")  # a kubeadm that let it by stops at its first systemctl
    config = node.path("/etc/kubernetes/kubeadm-config.yaml")
    args = ["init", "--config", "/etc/kubernetes/kubeadm-config.yaml"]
    listed = {"flag": None, "config": ["all", "SystemVerification"], "flag+config": ["SystemVerification"]}[how]
    if listed:
        config.write_text(config.read_text().replace(
            "  criSocket: unix:///var/run/crio/crio.sock\n",
            "  criSocket: unix:///var/run/crio/crio.sock\n  ignorePreflightErrors:\n"
            + "".join(f"    - {c}\n" for c in listed)))
    if how == "flag":
        args.append("--ignore-preflight-errors=all,SystemVerification")
    elif how == "flag+config":
        args.append("--ignore-preflight-errors=ALL")  # case-insensitive, the union of both lists
    out = node.kubeadm(*args)
    assert out.returncode == 1
    assert ALL_WITH_NAMED in out.stderr, out.stderr
    assert "[preflight] Running pre-flight checks" not in out.stdout  # refused before any check
    assert not node.path("/etc/kubernetes/pki/ca.crt").exists()


def test_join_refuses_all_with_a_named_check_and_accepts_all_alone(tmp_path):
    node = preflight_node(tmp_path, "w", DEBIAN12_KERNEL, cgroup=2, ip_forward="0")
    out = node.kubeadm(*join_args("--ignore-preflight-errors=all,SystemVerification"))
    assert out.returncode == 1 and ALL_WITH_NAMED in out.stderr
    env = dict(node.env(), KUBELAB_STANDIN_DISCOVERY_TIMEOUT="1")
    out = subprocess.run([sys.executable, str(KUBEADM), *join_args("--ignore-preflight-errors=all,ALL")],
                         capture_output=True, text=True, env=env, timeout=120, stdin=subprocess.DEVNULL)
    assert "don't specify individual checks" not in out.stderr  # all twice is still only all
    assert "[WARNING FileContent--proc-sys-net-ipv4-ip_forward]" in out.stdout + out.stderr


def test_init_refuses_one_cpu_and_little_memory(tmp_path):
    node = preflight_node(tmp_path, "small", DEBIAN12_KERNEL, cgroup=2, ip_forward="0")  # stops at preflight
    node.path("/run/kubelab-standin/available-cpus").write_text("1\n")
    node.path("/proc/meminfo").write_text("MemTotal:        1000000 kB\n")
    out = node.kubeadm("init", "--config", "/etc/kubernetes/kubeadm-config.yaml")
    assert out.returncode == 1
    assert "\t[ERROR NumCPU]: the number of available CPUs 1 is less than the required 2" in out.stderr
    assert "\t[ERROR Mem]: the system RAM (976 MB) is less than the minimum 1700 MB" in out.stderr
    out = node.kubeadm("init", "--config", "/etc/kubernetes/kubeadm-config.yaml", "--ignore-preflight-errors=NumCPU,mem")
    assert out.returncode == 1 and "[ERROR FileContent--proc-sys-net-ipv4-ip_forward]" in out.stderr
    assert "[ERROR NumCPU]" not in out.stderr and "[ERROR Mem]" not in out.stderr
    assert "\t[WARNING NumCPU]: the number of available CPUs 1 is less than the required 2" in out.stdout + out.stderr


def test_join_does_not_check_cpus_or_memory(tmp_path):
    node = preflight_node(tmp_path, "small-worker", DEBIAN12_KERNEL, cgroup=2, ip_forward="0")
    node.path("/run/kubelab-standin/available-cpus").write_text("1\n")
    node.path("/proc/meminfo").write_text("MemTotal:        1000000 kB\n")
    out = node.kubeadm(*join_args())
    assert "[ERROR FileContent--proc-sys-net-ipv4-ip_forward]" in out.stderr
    assert "NumCPU" not in out.stderr and "[ERROR Mem]" not in out.stderr


MULTIPLE_CRI = ("found multiple CRI endpoints on the host. Please define which one do you wish to use by setting "
                "the 'criSocket' field in the kubeadm configuration file: unix:///var/run/containerd/containerd.sock, "
                "unix:///var/run/crio/crio.sock")


def _second_runtime(node):
    """containerd's socket next to crio's (bound from its directory: AF_UNIX paths are short)."""
    directory = node.path("/var/run/containerd")
    directory.mkdir(parents=True, exist_ok=True)
    cwd = os.getcwd()
    os.chdir(directory)
    try:
        sock = socket.socket(socket.AF_UNIX)
        sock.bind("containerd.sock")
        sock.close()
    finally:
        os.chdir(cwd)


def test_multiple_cri_sockets_need_an_explicit_socket(tmp_path):
    node = preflight_node(tmp_path, "two-runtimes", DEBIAN12_KERNEL, cgroup=2, ip_forward="0")
    _second_runtime(node)
    # join without --cri-socket: DetectCRISocket refuses
    out = node.kubeadm(*join_args())
    assert out.returncode == 1 and MULTIPLE_CRI in out.stderr, out.stderr
    # with it, kubeadm goes on (to the ip_forward error this node has)
    out = node.kubeadm(*join_args("--cri-socket", "unix:///var/run/crio/crio.sock"))
    assert MULTIPLE_CRI not in out.stderr and "[ERROR FileContent--proc-sys-net-ipv4-ip_forward]" in out.stderr
    # init: an InitConfiguration without criSocket is refused, one with it is not
    config = node.path("/etc/kubernetes/kubeadm-config.yaml")
    with_socket = config.read_text()
    config.write_text(with_socket.replace("  criSocket: unix:///var/run/crio/crio.sock\n", ""))
    out = node.kubeadm("init", "--config", "/etc/kubernetes/kubeadm-config.yaml")
    assert out.returncode == 1 and MULTIPLE_CRI in out.stderr
    config.write_text(with_socket)
    out = node.kubeadm("init", "--config", "/etc/kubernetes/kubeadm-config.yaml")
    assert MULTIPLE_CRI not in out.stderr and "[ERROR FileContent--proc-sys-net-ipv4-ip_forward]" in out.stderr
    # reset: no socket given and no cluster to ask -> refused before it deletes anything
    node.path("/etc/kubernetes/pki").mkdir(parents=True, exist_ok=True)
    node.path("/etc/kubernetes/pki/ca.crt").write_text("x\n")
    out = node.kubeadm("reset", "-f")
    assert out.returncode == 1 and MULTIPLE_CRI in out.stderr
    assert node.path("/etc/kubernetes/pki/ca.crt").exists()
    out = node.kubeadm("reset", "-f", "--cri-socket", "unix:///var/run/crio/crio.sock")
    assert out.returncode == 0, out.stderr
    assert not node.path("/etc/kubernetes/pki/ca.crt").exists()


def test_no_known_cri_socket_falls_back_to_containerd(tmp_path):
    node = preflight_node(tmp_path, "no-runtime", DEBIAN12_KERNEL, cgroup=2)
    node.path("/var/run/crio/crio.sock").unlink()
    out = node.kubeadm(*join_args())
    assert out.returncode == 1
    assert '[ERROR CRI]: container runtime is not running' in out.stderr
    assert 'endpoint "unix:///var/run/containerd/containerd.sock"' in out.stderr


def _join_config(node, extra=""):
    path = node.path("/etc/kubernetes/join.yaml")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(
        """\
        apiVersion: kubeadm.k8s.io/v1beta4
        kind: JoinConfiguration
        discovery:
          bootstrapToken:
            apiServerEndpoint: 127.0.0.1:1
            token: abcdef.0123456789abcdef
            caCertHashes: [sha256:0000000000000000000000000000000000000000000000000000000000000000]
        nodeRegistration:
          criSocket: unix:///var/run/crio/crio.sock
        """) + extra)
    return "/etc/kubernetes/join.yaml"


def test_join_config_cannot_be_mixed_with_discovery_or_cri_flags(tmp_path):
    node = preflight_node(tmp_path, "mixed", DEBIAN12_KERNEL, cgroup=2, ip_forward="0")
    config = _join_config(node)
    out = node.kubeadm("join", "--config", config, "--token", "abcdef.0123456789abcdef",
                       "--discovery-token-ca-cert-hash", "sha256:" + "0" * 64, "--cri-socket", "unix:///var/run/crio/crio.sock")
    assert out.returncode == 1
    assert "can not mix '--config' with arguments [cri-socket discovery-token-ca-cert-hash token]" in out.stderr, out.stderr
    assert "[preflight] Running pre-flight checks" not in out.stdout
    # the allowed ones: --node-name, --ignore-preflight-errors, skip-*
    out = node.kubeadm("join", "--config", config, "--node-name", "mixed", "--ignore-preflight-errors=Swap")
    assert "can not mix" not in out.stderr
    assert "[ERROR FileContent--proc-sys-net-ipv4-ip_forward]" in out.stderr


# Ports held in a network namespace of the test's own (unshare -n), so no other
# process on this host sees them: checks.go PortOpenCheck, "Port N is in use".
HOLD_PORTS_AND_RUN = textwrap.dedent(
    """\
    import socket, subprocess, sys
    ports, argv = [int(p) for p in sys.argv[1].split(",")], sys.argv[2:]
    held = []
    for port in ports:
        s = socket.socket()
        s.bind(("0.0.0.0", port))
        s.listen(1)
        held.append(s)
    out = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)
    sys.stdout.write(out.stdout)
    sys.stderr.write(out.stderr)
    sys.exit(out.returncode)
    """
)


def kubeadm_with_ports_held(node, ports, *args):
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare (util-linux)")
    return subprocess.run(["unshare", "--net", sys.executable, "-c", HOLD_PORTS_AND_RUN, ",".join(map(str, ports)),
                           sys.executable, str(KUBEADM), *args],
                          capture_output=True, text=True, env=node.env(), timeout=180, stdin=subprocess.DEVNULL)


def test_join_refuses_a_taken_kubelet_port(tmp_path):
    node = preflight_node(tmp_path, "port", DEBIAN12_KERNEL, cgroup=2)
    out = kubeadm_with_ports_held(node, [10250], *join_args())
    assert out.returncode == 1
    assert "\t[ERROR Port-10250]: Port 10250 is in use" in out.stderr, out.stderr


def test_init_refuses_taken_control_plane_ports_and_leftover_manifests(tmp_path):
    node = preflight_node(tmp_path, "ports", DEBIAN12_KERNEL, cgroup=2)
    node.path("/etc/kubernetes/manifests").mkdir(parents=True, exist_ok=True)
    node.path("/etc/kubernetes/manifests/etcd.yaml").write_text("kind: Pod\n")
    out = kubeadm_with_ports_held(node, [10250, 10257, 10259, 2379, 2380],
                                  "init", "--config", "/etc/kubernetes/kubeadm-config.yaml")
    assert out.returncode == 1
    for port in (10250, 10257, 10259, 2379, 2380):
        assert f"\t[ERROR Port-{port}]: Port {port} is in use" in out.stderr, out.stderr
    assert ("\t[ERROR FileAvailable--etc-kubernetes-manifests-etcd.yaml]: "
            "/etc/kubernetes/manifests/etcd.yaml already exists") in out.stderr
    assert "\t[ERROR DirAvailable--etc-kubernetes-manifests]: /etc/kubernetes/manifests is not empty" in out.stderr
