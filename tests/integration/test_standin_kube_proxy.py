"""The kube-proxy stand-in (molecule/resources/standins/kube-proxy, a TEST DOUBLE).

Unit tests of the pure ruleset function, then the program on a small data
plane of network namespaces this test builds (nothing leaves them):

    client 198.18.0.100 --eth0-- node 198.18.0.11 (kube-proxy's table) --up0-- up 192.0.2.254
                                   +-- v-p1 -- pod p1 10.244.1.10 (HTTP :80, answers "p1")
                                   +-- v-p2 -- pod p2 10.244.1.11 (HTTP :80, answers "p2")

Services and EndpointSlices come from the API emulator, the slices made by the
controllers stand-in from pods whose status this test writes as the kubelet
stand-in will.
"""

from __future__ import annotations

import http.client
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from fixtures_kapi import STANDINS, kube_api  # noqa: F401  (pytest fixture)

KUBE_PROXY = STANDINS / "kube-proxy" / "kube_proxy.py"
_spec = importlib.util.spec_from_file_location("kube_proxy", KUBE_PROXY)
kp = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(kp)

NS = "test"


def _svc(name, stype, cip, port, node_port=None, external=(), port_name="http", protocol="TCP"):
    port_spec = {"name": port_name, "port": port, "protocol": protocol, "targetPort": 80}
    if node_port:
        port_spec["nodePort"] = node_port
    spec = {"type": stype, "clusterIP": cip, "ports": [port_spec], "selector": {"app": "web"}}
    if external:
        spec["externalIPs"] = list(external)
    return {"metadata": {"name": name, "namespace": NS}, "spec": spec}


def _slice(service, endpoints, port_name="http", port=80):
    return {"metadata": {"name": f"{service}-abcde", "namespace": NS,
                         "labels": {"kubernetes.io/service-name": service}},
            "addressType": "IPv4", "ports": [{"name": port_name, "port": port, "protocol": "TCP"}],
            "endpoints": [{"addresses": [ip], "conditions": cond} for ip, cond in endpoints]}


READY = {"ready": True, "serving": True, "terminating": False}


# ---- the pure function --------------------------------------------------------
@pytest.mark.unit
def test_chain_names_follow_hash_and_truncate():
    name = kp.hash_and_truncate("ns1/svc1/tcp/p80")
    assert name.endswith("-ns1/svc1/tcp/p80") and len(name.split("-")[0]) == 8
    assert name.split("-")[0].isupper() or name.split("-")[0].isalnum()
    long = kp.hash_and_truncate("x" * 300)
    assert len(long) == 240 and long.endswith("...")


@pytest.mark.unit
def test_ruleset_dnat_random_and_masquerade():
    text = kp.render_ruleset(
        [_svc("web", "NodePort", "10.96.5.5", 8081, 31511, ["198.18.1.50"])],
        [_slice("web", [("10.244.1.10", READY), ("10.244.1.11", READY)])],
        nodeport_ips=["198.18.0.11", "127.0.0.1"], cluster_cidr="10.244.0.0/16")
    assert text.startswith("add table ip kube-proxy\ndelete table ip kube-proxy\ntable ip kube-proxy {")
    base = kp.hash_and_truncate("test/web/tcp/http")
    assert f"10.96.5.5 . tcp . 8081 : goto service-{base}" in text
    assert f"198.18.1.50 . tcp . 8081 : goto external-{base}" in text
    assert f"tcp . 31511 : goto external-{base}" in text
    assert "numgen random mod 2 vmap { 0 : goto endpoint-" in text
    assert "meta l4proto tcp dnat to 10.244.1.10:80" in text and "meta l4proto tcp dnat to 10.244.1.11:80" in text
    assert "ip daddr 10.96.5.5 tcp dport 8081 ip saddr != 10.244.0.0/16 jump mark-for-masquerade" in text
    assert "ip saddr 10.244.1.10 jump mark-for-masquerade" in text  # hairpin
    assert "elements = { 198.18.0.11 }" in text  # loopback never takes NodePorts
    assert "ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports" in text
    # every node address: fib daddr type local, no nodeport-ips set
    all_local = kp.render_ruleset([_svc("web", "NodePort", "10.96.5.5", 8081, 31511)],
                                  [_slice("web", [("10.244.1.10", READY)])])
    assert "fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports" in all_local
    assert "nodeport-ips" not in all_local
    assert "numgen random mod 1 vmap" in all_local


@pytest.mark.unit
def test_ruleset_endpoint_selection():
    not_ready = {"ready": False, "serving": False, "terminating": False}
    terminating = {"ready": False, "serving": True, "terminating": True}
    text = kp.render_ruleset(
        [_svc("a", "ClusterIP", "10.96.0.20", 80), _svc("b", "ClusterIP", "10.96.0.21", 80),
         _svc("c", "ClusterIP", "10.96.0.22", 80), _svc("d", "ClusterIP", "None", 80),
         {"metadata": {"name": "e", "namespace": NS}, "spec": {"type": "ExternalName", "externalName": "x.example"}}],
        [_slice("a", [("10.244.1.10", READY), ("10.244.1.11", not_ready), ("10.244.1.12", {})]),
         _slice("b", [("10.244.1.13", terminating)]),
         _slice("c", [("10.244.1.14", not_ready)])])
    # ready and nil-ready endpoints only
    assert "dnat to 10.244.1.10:80" in text and "dnat to 10.244.1.12:80" in text
    assert "dnat to 10.244.1.11:80" not in text
    # no ready endpoint: the serving terminating ones
    assert "dnat to 10.244.1.13:80" in text
    # nothing usable: reject, not DNAT
    assert '10.96.0.22 . tcp . 80 comment "test/c:http" : goto reject-chain' in text
    assert "10.244.1.14" not in text
    assert "None" not in text and "x.example" not in text


@pytest.mark.unit
def test_ruleset_port_name_must_match():
    text = kp.render_ruleset([_svc("a", "ClusterIP", "10.96.0.20", 80, port_name="web")],
                             [_slice("a", [("10.244.1.10", READY)], port_name="http")])
    assert "dnat to" not in text and "10.96.0.20 . tcp . 80" in text and "reject-chain" in text


@pytest.mark.unit
def test_ruleset_kubernetes_service_to_apiserver():
    sys.path.insert(0, str(STANDINS))
    from controllers.logic import kubernetes_endpoints  # noqa: PLC0415

    _eps, endpoint_slice = kubernetes_endpoints("198.18.0.10", 6443)
    svc = {"metadata": {"name": "kubernetes", "namespace": "default"},
           "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.1",
                    "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}]}}
    text = kp.render_ruleset([svc], [endpoint_slice])
    assert f"10.96.0.1 . tcp . 443 : goto service-{kp.hash_and_truncate('default/kubernetes/tcp/https')}" in text
    assert "meta l4proto tcp dnat to 198.18.0.10:6443" in text


@pytest.mark.unit
def test_ruleset_is_deterministic():
    services = [_svc("b", "ClusterIP", "10.96.0.21", 80), _svc("a", "LoadBalancer", "10.96.0.20", 80, 30001)]
    slices = [_slice("a", [("10.244.1.11", READY), ("10.244.1.10", READY)]), _slice("b", [("10.244.1.12", READY)])]
    assert kp.render_ruleset(services, slices) == kp.render_ruleset(services[::-1], slices[::-1])


# ---- the program on a namespace data plane ------------------------------------
SERVER = r'''
import http.server, sys
name = sys.argv[1].encode()
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(name)))
        self.end_headers()
        self.wfile.write(name)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("0.0.0.0", 80), H).serve_forever()
'''
NODE_IP, CLIENT_IP, EXTRA_EXTERNAL = "198.18.0.11", "198.18.0.100", "198.18.1.50"
PODS = {"p1": "10.244.1.10", "p2": "10.244.1.11"}
SERVICES = [
    # name, type, cluster IP, port, nodePort
    ("web", "ClusterIP", "10.96.10.10", 80, None),
    ("web-lb", "LoadBalancer", "10.96.10.11", 8080, 31558),
    ("web-np", "NodePort", "10.96.10.12", 8081, 31511),
]
EMPTY = ("empty", "ClusterIP", "10.96.10.13", 80)


def _run(*argv, input_text=None):
    proc = subprocess.run(list(argv), input=input_text, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {proc.stderr.strip()}")
    return proc.stdout


class Plane:
    def __init__(self):
        self.prefix = f"kp{os.getpid() % 100000}"
        self.ns = {k: f"{self.prefix}-{k}" for k in ("client", "node", "up", *PODS)}
        self.created, self.procs = [], []
        self.workdir = Path(tempfile.mkdtemp(prefix=self.prefix))

    def ip(self, key, *args):
        return _run("ip", "-n", self.ns[key], *args)

    def up(self):
        for key, name in self.ns.items():
            _run("ip", "netns", "add", name)
            self.created.append(name)
            self.ip(key, "link", "set", "lo", "up")
        self.ip("client", "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", self.ns["node"])
        self.ip("client", "addr", "add", f"{CLIENT_IP}/24", "dev", "eth0")
        self.ip("node", "addr", "add", f"{NODE_IP}/24", "dev", "eth0")
        for key in ("client", "node"):
            self.ip(key, "link", "set", "eth0", "up")
        # the client reaches the service range and the extra external IP through the node
        self.ip("client", "route", "add", "10.96.0.0/12", "via", NODE_IP)
        self.ip("client", "route", "add", f"{EXTRA_EXTERNAL}/32", "via", NODE_IP)
        # a default route, as real nodes have (traffic to a ClusterIP is routed before it is
        # DNATed or rejected), on an uplink of its own: a default route back out of eth0 would
        # make the node send the client ICMP redirects instead of letting it see the rejects
        self.ip("node", "link", "add", "up0", "type", "veth", "peer", "name", "eth0", "netns", self.ns["up"])
        self.ip("node", "addr", "add", "192.0.2.1/24", "dev", "up0")
        self.ip("node", "link", "set", "up0", "up")
        self.ip("up", "addr", "add", "192.0.2.254/24", "dev", "eth0")
        self.ip("up", "link", "set", "eth0", "up")
        self.ip("node", "route", "add", "default", "via", "192.0.2.254")
        _run("ip", "netns", "exec", self.ns["node"], "sysctl", "-qw", "net.ipv4.ip_forward=1")
        for key, addr in PODS.items():
            self.ip("node", "link", "add", f"v-{key}", "type", "veth", "peer", "name", "eth0", "netns", self.ns[key])
            self.ip("node", "addr", "add", "10.244.1.1/32", "dev", f"v-{key}")
            self.ip("node", "link", "set", f"v-{key}", "up")
            self.ip("node", "route", "add", f"{addr}/32", "dev", f"v-{key}")
            self.ip(key, "addr", "add", f"{addr}/32", "dev", "eth0")
            self.ip(key, "link", "set", "eth0", "up")
            self.ip(key, "route", "add", "10.244.1.1", "dev", "eth0")
            self.ip(key, "route", "add", "default", "via", "10.244.1.1", "dev", "eth0")
            script = self.workdir / "server.py"
            script.write_text(SERVER)
            proc = subprocess.Popen(["ip", "netns", "exec", self.ns[key], sys.executable, str(script), key],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.procs.append(proc)
        deadline = time.monotonic() + 10
        for key in PODS:
            while not _run("ip", "netns", "exec", self.ns[key], "ss", "-Hltn", "sport = :80").strip():
                if time.monotonic() > deadline:
                    raise RuntimeError(f"pod {key} does not listen")
                time.sleep(0.05)
        return self

    def down(self):
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for name in reversed(self.created):
            subprocess.run(["ip", "netns", "delete", name], check=False, capture_output=True)
        shutil.rmtree(self.workdir, ignore_errors=True)
        left = [n for n in _run("ip", "netns", "list").split() if n.startswith(self.prefix + "-")]
        assert not left, left

    def get(self, where, host, port, timeout=2.0):
        """One HTTP GET from namespace ``where``: the body, or the exception's class name."""
        from fixtures_dataplane import run_in_netns  # noqa: PLC0415

        def fetch():
            conn = http.client.HTTPConnection(host, port, timeout=timeout)
            try:
                conn.request("GET", "/", headers={"Connection": "close"})
                return conn.getresponse().read().decode()
            except OSError as exc:
                return type(exc).__name__
            finally:
                conn.close()
        return run_in_netns(self.ns[where], fetch)

    def table(self):
        return _run("ip", "netns", "exec", self.ns["node"], "nft", "list", "table", "ip", "kube-proxy")


@pytest.fixture
def plane():
    if os.geteuid() != 0:
        pytest.skip("needs root for network namespaces")
    for tool in ("ip", "nft", "ss"):
        if shutil.which(tool) is None:
            pytest.skip(f"needs {tool}")
    built = Plane()
    try:
        yield built.up()
    finally:
        built.down()


def _api_objects(api):
    """Services, a Deployment-less set of pods as the kubelet reports them, and the controllers' slices."""
    sys.path.insert(0, str(STANDINS))
    from controllers.kclient import Client  # noqa: PLC0415
    from controllers.manager import Controllers  # noqa: PLC0415

    client = Client(api.kubeconfig)
    client.create("namespaces", None, {"metadata": {"name": NS}})
    client.create("nodes", None, {"metadata": {"name": "node1"}, "status": {
        "conditions": [{"type": "Ready", "status": "True"}],
        "addresses": [{"type": "InternalIP", "address": NODE_IP}]}})
    for name, stype, cip, port, node_port in SERVICES:
        client.create("services", NS, _svc(name, stype, cip, port, node_port, [NODE_IP, EXTRA_EXTERNAL]))
    client.create("services", NS, {"metadata": {"name": EMPTY[0]}, "spec": {
        "clusterIP": EMPTY[2], "selector": {"app": "nothing"}, "ports": [{"name": "http", "port": EMPTY[3]}]}})
    for key, ip in PODS.items():
        client.create("pods", NS, {"metadata": {"name": key, "labels": {"app": "web"}},
                                   "spec": {"nodeName": "node1", "containers": [{"name": "web", "image": "x"}]}})
        client.patch("pods", NS, key, {"status": {"phase": "Running", "podIP": ip, "conditions": [
            {"type": "Ready", "status": "True"}]}}, sub="status")
    Controllers(client, log=lambda line: None).settle()
    return client


def _proxy(api, plane, *extra):
    return subprocess.run(
        [sys.executable, str(KUBE_PROXY), "--kubeconfig", api.kubeconfig, "--hostname-override", "node1",
         "--cluster-cidr", "10.244.0.0/16", "--nft", f"ip netns exec {plane.ns['node']} nft", "--once", *extra],
        capture_output=True, text=True, timeout=60, check=False)


def _spread(plane, where, host, port, count=24):
    seen = [plane.get(where, host, port) for _ in range(count)]
    return {body: seen.count(body) for body in set(seen)}


@pytest.mark.root
@pytest.mark.netns
def test_cluster_ip_external_ip_and_node_port_reach_both_pods(kube_api, plane):  # noqa: F811
    client = _api_objects(kube_api)
    # before kube-proxy ran nothing answers on the service addresses
    assert plane.get("client", "10.96.10.10", 80, timeout=0.5) in ("TimeoutError", "ConnectionRefusedError", "OSError")
    proc = _proxy(kube_api, plane)
    assert proc.returncode == 0, proc.stderr
    targets = [("client", "10.96.10.10", 80), ("client", "10.96.10.11", 8080), ("client", "10.96.10.12", 8081),
               ("node", "10.96.10.10", 80), ("p1", "10.96.10.10", 80)]
    for _name, _type, _cip, port, node_port in SERVICES:
        for external in (NODE_IP, EXTRA_EXTERNAL):
            targets.append(("client", external, port))
        if node_port:
            targets.append(("client", NODE_IP, node_port))
            targets.append(("node", NODE_IP, node_port))
    for where, host, port in targets:
        spread = _spread(plane, where, host, port)
        assert set(spread) == {"p1", "p2"}, (where, host, port, spread)
    # a Service without endpoints and an unknown port of a ClusterIP: refused at once, not a timeout
    for where in ("client", "node", "p1"):
        assert plane.get(where, EMPTY[2], EMPTY[3]) == "ConnectionRefusedError", where
        assert plane.get(where, "10.96.10.10", 81) == "ConnectionRefusedError", where
    # NodePorts answer only on the primary address (nftables mode's default --nodeport-addresses)
    assert "ip daddr @nodeport-ips" in plane.table()
    # idempotent: a second sync leaves the same table
    before = plane.table()
    assert _proxy(kube_api, plane).returncode == 0
    assert plane.table() == before
    # one pod stops being ready: the controllers drop it from the slices, kube-proxy from the table
    client.patch("pods", NS, "p2", {"status": {"conditions": [{"type": "Ready", "status": "False"}]}}, sub="status")
    sys.path.insert(0, str(STANDINS))
    from controllers.manager import Controllers  # noqa: PLC0415
    Controllers(client, log=lambda line: None).settle()
    assert _proxy(kube_api, plane).returncode == 0
    assert _spread(plane, "client", NODE_IP, 31511, 12) == {"p1": 12}
    assert "10.244.1.11" not in plane.table()


@pytest.mark.root
@pytest.mark.netns
def test_nft_failure_is_reported(kube_api, plane):  # noqa: F811
    _api_objects(kube_api)
    proc = subprocess.run(
        [sys.executable, str(KUBE_PROXY), "--kubeconfig", kube_api.kubeconfig, "--hostname-override", "node1",
         "--nft", "false", "--once"], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 1 and "false -f - failed" in proc.stderr
    missing = subprocess.run(
        [sys.executable, str(KUBE_PROXY), "--kubeconfig", kube_api.kubeconfig, "--hostname-override", "nosuchnode",
         "--dump"], capture_output=True, text=True, timeout=60, check=False)
    assert missing.returncode != 0 and "no primary IP for node 'nosuchnode'" in missing.stderr
    bad = subprocess.run([sys.executable, str(KUBE_PROXY), "--kubeconfig", "/nonexistent", "--once"],
                         capture_output=True, text=True, timeout=60, check=False)
    assert bad.returncode == 1 and "kube-proxy: cannot use kubeconfig /nonexistent" in bad.stderr


@pytest.mark.root
@pytest.mark.netns
def test_loop_mode_follows_endpoint_changes(kube_api, plane):  # noqa: F811
    client = _api_objects(kube_api)
    proc = subprocess.Popen(
        [sys.executable, str(KUBE_PROXY), "--kubeconfig", kube_api.kubeconfig, "--hostname-override", "node1",
         "--nft", f"ip netns exec {plane.ns['node']} nft", "--min-sync-period", "0.2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def wait_for(predicate, what):
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if predicate(plane.table()):
                    return
            except RuntimeError:  # the table is not there yet
                pass
            time.sleep(0.1)
        raise AssertionError(what)

    try:
        wait_for(lambda t: "10.244.1.10" in t and "10.244.1.11" in t, "both endpoints programmed")
        client.delete("pods", NS, "p1")
        sys.path.insert(0, str(STANDINS))
        from controllers.manager import Controllers  # noqa: PLC0415
        Controllers(client, log=lambda line: None).settle()
        wait_for(lambda t: "10.244.1.10" not in t and "10.244.1.11" in t, "deleted pod p1 left the table")
        assert _spread(plane, "client", "10.96.10.10", 80, 8) == {"p2": 8}
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "programmed table ip kube-proxy" in out


@pytest.mark.root
@pytest.mark.netns
def test_nodeport_addresses_primary_versus_all(kube_api, plane):  # noqa: F811
    _api_objects(kube_api)
    # the node's second address (its uplink, 192.0.2.1), asked from the uplink side
    assert _proxy(kube_api, plane).returncode == 0
    assert plane.get("up", "192.0.2.1", 31511) == "ConnectionRefusedError"  # primary only: no DNAT there
    assert set(_spread(plane, "client", NODE_IP, 31511, 12)) == {"p1", "p2"}
    proc = _proxy(kube_api, plane, "--nodeport-addresses", "0.0.0.0/0")
    assert proc.returncode == 0, proc.stderr
    assert "fib daddr type local" in plane.table() and "nodeport-ips" not in plane.table()
    assert set(_spread(plane, "up", "192.0.2.1", 31511, 16)) == {"p1", "p2"}
    assert set(_spread(plane, "client", NODE_IP, 31511, 16)) == {"p1", "p2"}
