"""The whole verify stage (playbooks/verify.yml through ansible-playbook)
against the Kubernetes API emulator, on loopback only, without podman.

Used by tests/integration/test_verify_stage.py and bench/verify_stage.py.

What it builds:

* a kapi emulator (tests/fixtures_kapi.py) holding the write-up's objects:
  namespace ``test``, nginx x2 and busybox (Pods and Deployments marked
  ready by patching their status: kapi has no controllers), the three
  Services, EndpointSlices, two Nodes at 127.0.0.1 and 127.0.0.2, and
  ``kube-dns``. The Services have no ``externalIPs``: the API server refuses
  loopback ones (ValidateNonSpecialIP), and any other address would take
  the checks' traffic off this machine. So the HTTP checks here are the
  node x nodePort ones, and ``nginx-svc`` (ClusterIP) has nothing to reach
  it from outside (its spread check is "not run"); the externalIP path is
  covered by the namespace data plane (tests/integration/test_dataplane*.py);
* a loopback "nginx" (a Python HTTP server answering the welcome page) on
  every node address x nodePort, so those checks pass for real. The Service
  ports are free high ports;
* an inventory of three local-connection hosts (cp1 in control_plane, w1 and
  w2 in workers): the node play runs for real on this machine, where there
  is no crio (its checks fail, as on a node without crio).

What fails here by design: ``pods/log`` and ``pods/exec``. kapi forwards
them to the kubelet of the pod's Node; the Nodes name a closed loopback port
as their kubelet port, so kapi answers "error dialing backend ... connection
refused" and the spread and in-pod checks fail as transport/log-read errors.
Nothing leaves loopback.
"""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ADDRESSES = ("127.0.0.1", "127.0.0.2")
NODES = {"kubelab-w1": "127.0.0.1", "kubelab-w2": "127.0.0.2"}
WELCOME = "<!DOCTYPE html><html><head><title>Welcome to nginx!</title></head><body>stand-in</body></html>"


def _free_port(address: str, low: int = 20000, high: int = 29999, rng: random.Random | None = None) -> int:
    rng = rng or random.Random()
    for _ in range(200):
        port = rng.randint(low, high)
        with socket.socket() as sock:
            try:
                sock.bind((address, port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {low}-{high} on {address}")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the checks open up to 16 connections at once; the default backlog is 5


class LoopbackNginx:
    """One HTTP server per (address, port), answering nginx's welcome page."""

    def __init__(self) -> None:
        self.servers: list[ThreadingHTTPServer] = []
        self.hits = 0
        self._lock = threading.Lock()

    def serve(self, address: str, port: int) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                with outer._lock:
                    outer.hits += 1
                data = WELCOME.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        server = _Server((address, port), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.servers.append(server)

    def close(self) -> None:
        for server in self.servers:
            server.shutdown()
            server.server_close()


def _ready(ip: str) -> dict:
    return {"status": {"phase": "Running", "podIP": ip, "conditions": [{"type": "Ready", "status": "True"}]}}


def build_lab(api, nginx: LoopbackNginx, rng: random.Random | None = None, nginx_ready: int = 2) -> dict:
    """The write-up's objects on loopback addresses; returns the ports used."""
    from kubernetes import client

    rng = rng or random.Random()
    core, apps, disc = client.CoreV1Api(api), client.AppsV1Api(api), client.DiscoveryV1Api(api)
    core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "test"}})
    with socket.socket() as sock:  # a closed port (ephemeral range, not the Services' 20000-29999)
        sock.bind(("127.0.0.1", 0))
        no_kubelet = sock.getsockname()[1]
    for name, ip in NODES.items():
        core.create_node({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
                          "status": {"addresses": [{"type": "InternalIP", "address": ip},
                                                   {"type": "Hostname", "address": name}],
                                     "daemonEndpoints": {"kubeletEndpoint": {"Port": no_kubelet}},
                                     "conditions": [{"type": "Ready", "status": "True"}]}})
    core.create_namespaced_service("kube-system", {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "kube-dns", "namespace": "kube-system"},
        "spec": {"clusterIP": "10.96.0.10", "selector": {"k8s-app": "kube-dns"},
                 "ports": [{"name": "dns", "port": 53, "protocol": "UDP"},
                           {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
                           {"name": "metrics", "port": 9153, "protocol": "TCP"}]}})
    pods = {"nginx-7f9c6d4b8-a1b2c": ("10.244.1.15", "kubelab-w1", "nginx"),
            "nginx-7f9c6d4b8-d3e4f": ("10.244.2.14", "kubelab-w2", "nginx"),
            "busybox-5c7d8f9b6-x7y8z": ("10.244.1.16", "kubelab-w1", "busybox")}
    for name, (ip, node, app) in pods.items():
        core.create_namespaced_pod("test", {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "test", "labels": {"app": app}},
            "spec": {"nodeName": node, "containers": [{"name": app, "image": app}]}})
        core.patch_namespaced_pod_status(name, "test", _ready(ip))
    for name, replicas, app in (("nginx", 2, "nginx"), ("busybox", 1, "busybox")):
        apps.create_namespaced_deployment("test", {
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "test"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": app}},
                     "template": {"metadata": {"labels": {"app": app}},
                                  "spec": {"containers": [{"name": app, "image": app}]}}}})
    apps.patch_namespaced_deployment_status("nginx", "test", {"status": {"readyReplicas": nginx_ready, "replicas": 2}})
    apps.patch_namespaced_deployment_status("busybox", "test", {"status": {"readyReplicas": 1, "replicas": 1}})
    ports: dict[str, dict] = {}
    for name, stype in (("nginx-svc", "ClusterIP"), ("nginx-svc-lb", "LoadBalancer"), ("nginx-svc-np", "NodePort")):
        port = {"name": "http", "port": _free_port(ADDRESSES[0], rng=rng), "targetPort": 80, "protocol": "TCP"}
        if stype != "ClusterIP":
            port["nodePort"] = _free_port(ADDRESSES[0], 30000, 32767, rng=rng)
        ports[name] = port
        for address in ADDRESSES:
            if "nodePort" in port:
                nginx.serve(address, port["nodePort"])
        core.create_namespaced_service("test", {
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "test"},
            "spec": {"type": stype, "selector": {"app": "nginx"}, "ports": [port]}})
        disc.create_namespaced_endpoint_slice("test", {
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
            "metadata": {"name": name + "-x1", "namespace": "test", "labels": {"kubernetes.io/service-name": name}},
            "endpoints": [{"addresses": [pods[p][0]], "nodeName": pods[p][1], "conditions": {"ready": True},
                           "targetRef": {"kind": "Pod", "name": p, "namespace": "test"}}
                          for p in pods if pods[p][2] == "nginx"],
            "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]})
    return ports


def write_inventory(path: Path, python: str = sys.executable, unreachable: bool = False) -> Path:
    """cp1, w1, w2 on local connections; with ``unreachable`` also w3, ssh to
    127.0.0.1 port 1 (loopback, refused at once)."""
    local = {"ansible_connection": "local", "ansible_python_interpreter": python}
    workers = {"w1": dict(local, kubelab_node_ip="127.0.0.1"), "w2": dict(local, kubelab_node_ip="127.0.0.2")}
    if unreachable:
        workers["w3"] = {"ansible_connection": "ssh", "ansible_host": "127.0.0.1", "ansible_port": 1,
                         "ansible_user": "nobody", "kubelab_node_ip": "127.0.0.3"}
    inventory = {"all": {"children": {
        "control_plane": {"hosts": {"cp1": dict(local, kubelab_node_ip="127.0.0.1")}},
        "workers": {"hosts": workers}}}}
    path.write_text(json.dumps(inventory, indent=1))
    return path


def stage_vars(kubeconfig: str, artifacts: Path, **extra) -> dict:
    """Extra variables for playbooks/verify.yml: the emulator's kubeconfig,
    one try per check (kapi's exec/log errors are definite here: retrying
    them only adds sleeps), no wait for log lines that cannot come."""
    values = {
        "kubelab_artifacts_dir": str(artifacts),
        "kubelab_admin_kubeconfig": kubeconfig,
        "verify_wait_timeout": 0,
        "verify_attempts": 1,
        "verify_retry_delay": 0.0,
        "verify_spread_log_wait": 0.0,
        "verify_http_timeout": 2.0,
    }
    values.update(extra)
    return values


def run_stage(root: Path, inventory: Path, values: dict, workdir: Path, timeout: float = 600,
              extra_env: dict | None = None) -> dict:
    """Run ``ansible-playbook -i INVENTORY playbooks/verify.yml`` of the
    project at ``root`` with kubelab's environment; returns rc, seconds,
    stdout and the report directory."""
    sys.path.insert(0, str(ROOT))
    from kubelab.project import ansible_playbook, playbook_env

    vars_file = workdir / "verify-vars.json"
    vars_file.write_text(json.dumps(values))
    env = playbook_env(root, os.environ)
    env["ANSIBLE_FORCE_COLOR"] = "0"
    env.update(extra_env or {})
    # a cache of this machine's facts must not leak between projects/runs
    env["ANSIBLE_CACHE_PLUGIN_CONNECTION"] = str(workdir / "facts")
    started = time.monotonic()
    proc = subprocess.run(
        [str(ansible_playbook()), "-i", str(inventory), "-e", f"@{vars_file}", str(root / "playbooks" / "verify.yml")],
        cwd=root, env=env, capture_output=True, text=True, timeout=timeout, check=False,
    )
    seconds = time.monotonic() - started
    return {"rc": proc.returncode, "seconds": seconds, "stdout": proc.stdout, "stderr": proc.stderr,
            "report_dir": Path(values["kubelab_artifacts_dir"]) / "report"}


# Loaded by every Python process started with its directory on PYTHONPATH
# (ansible-playbook hands PYTHONPATH on to the local module processes):
# appends one line per process that imported the kubernetes client.
IMPORT_HOOK = """\
import atexit, os, sys
def _kubelab_count_kubernetes():
    if "kubernetes" in sys.modules:
        with open({log!r}, "a") as handle:
            handle.write("%d %s\\n" % (os.getpid(), " ".join(sys.argv)[:200]))
atexit.register(_kubelab_count_kubernetes)
"""


def kubernetes_import_counter(workdir: Path) -> tuple[dict, Path]:
    """``(extra_env, log)``: run the stage with extra_env and count the lines
    of log afterwards (one per process that imported the kubernetes client)."""
    hook = workdir / "import-hook"
    hook.mkdir(parents=True, exist_ok=True)
    log = workdir / "kubernetes-imports.log"
    (hook / "sitecustomize.py").write_text(IMPORT_HOOK.format(log=str(log)))
    return {"PYTHONPATH": str(hook)}, log
