"""The kubelet stand-in's node agent (molecule/resources/standins/nodeagent, a TEST DOUBLE).

Two kubelet stand-ins run as they do on a lab node, each in a node network
namespace this test builds (nothing leaves them), against the API emulator
running in node A's namespace (as kapi runs on cp1), with a CRI-O stand-in
daemon per node serving its effective config on the node's crio.sock:

    host 198.18.0.200 (the test: API client, exec/log over HTTP)
      |
    sw: br0 --+-- na 198.18.0.11  kapi, kubelet na (podCIDR 10.244.0.0/24)
              +-- nb 198.18.0.12  kubelet nb (podCIDR 10.244.1.0/24)

Pods are created with spec.nodeName (no scheduler needed).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from fixtures_kapi import STANDINS, KubeApi

sys.path.insert(0, str(STANDINS))
from controllers.kclient import ApiError, Client  # noqa: E402
from podrt import caps as capmod  # noqa: E402
from podrt.runtime import PodRuntime  # noqa: E402

KUBELET = STANDINS / "pkgs" / "kubelet" / "root" / "usr" / "bin" / "kubelet"
CRIO = STANDINS / "pkgs" / "cri-o" / "root" / "usr" / "bin" / "crio"
CRIO_DROPIN = STANDINS / "pkgs" / "cri-o" / "root" / "etc" / "crio" / "crio.conf.d" / "10-crio.conf"
NODES = {"na": "198.18.0.11", "nb": "198.18.0.12"}
HOST_IP = "198.18.0.200"
NET_RAW_BIT = 13
BUSYBOX = "docker.io/library/busybox:1.36"
NGINX = "docker.io/library/nginx:1.27"
SLEEP = ["/bin/sh", "-c", "sleep inf"]

pytestmark = [pytest.mark.root, pytest.mark.netns, pytest.mark.slow]


def _run(*argv, check=True, input_text=None):
    proc = subprocess.run(list(argv), capture_output=True, text=True, check=False, input=input_text)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {proc.stderr.strip()}")
    return proc.stdout


def _wait(what, func, timeout=30.0, interval=0.2):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = func()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}: last {last!r}")


class NetnsKubeApi(KubeApi):
    """kapi started in a node's network namespace, listening on that node's address."""

    def __init__(self, workdir: Path, netns: str, address: str):
        super().__init__(workdir)
        self.netns, self.address = netns, address

    def start(self, timeout: float = 20.0) -> "NetnsKubeApi":
        cmd = ["nsenter", f"--net=/run/netns/{self.netns}", "--", sys.executable, "-m", "kapi",
               "--listen", f"{self.address}:0"]
        log = open(self.log, "w", encoding="utf-8")  # noqa: SIM115 - lives with the process
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir,
                                     env=dict(os.environ, PYTHONPATH=str(STANDINS)))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"kapi exited: {self.log.read_text()}")
            match = re.search(r"serving on (\S+)", self.log.read_text())
            if match and self._answers(match.group(1)):
                self.url = match.group(1)
                self._write_kubeconfig()
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"kapi did not answer: {self.log.read_text()}")


class Node:
    """One node: a root directory for the kubelet's files, a CRI-O stand-in daemon, the kubelet."""

    def __init__(self, name, netns, workdir: Path, kubeconfig_text: str):
        self.name, self.netns, self.ip = name, netns, NODES[name]
        self.root = workdir / name
        for sub in ("var/lib/kubelet", "etc/kubernetes", "var/run/crio", "sys/fs/cgroup", "etc/crio/crio.conf.d"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        (self.root / "sys/fs/cgroup/cgroup.controllers").write_text("cpu memory pids\n")
        (self.root / "etc/kubernetes/kubelet.conf").write_text(kubeconfig_text)
        (self.root / "etc/resolv.conf").write_text("nameserver 198.18.0.53\nsearch lab.example\n")
        (self.root / "var/lib/kubelet/config.yaml").write_text(
            "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n"
            "clusterDNS:\n- 10.96.0.10\nclusterDomain: cluster.local\nnodeStatusUpdateFrequency: 2s\n")
        shutil.copy(CRIO_DROPIN, self.root / "etc/crio/crio.conf.d/10-crio.conf")
        self.sock = self.root / "var/run/crio/crio.sock"
        self.crio = None
        self.kubelet = None
        self.kubelet_log = workdir / f"kubelet-{name}.log"

    def start_crio(self):
        env = dict(os.environ, CONTAINER_CONFIG="", CONTAINER_CONFIG_DIR=str(self.root / "etc/crio/crio.conf.d"),
                   CONTAINER_LISTEN=str(self.sock))
        env.pop("NOTIFY_SOCKET", None)
        self.crio = subprocess.Popen([sys.executable, str(CRIO)], env=env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        _wait("crio socket", lambda: self.sock.exists() or self.crio.poll() is not None, 10)
        assert self.crio.poll() is None, "crio stand-in exited"

    def stop_crio(self):
        if self.crio and self.crio.poll() is None:
            self.crio.terminate()
            self.crio.wait(timeout=10)
        _wait("crio socket removed", lambda: not self.sock.exists(), 10)

    def start_kubelet(self):
        env = dict(os.environ, KUBELAB_STANDIN_ROOT=str(self.root), KUBELAB_STANDIN_LIB=str(STANDINS))
        env.pop("KUBELAB_KUBELET_PORT", None)
        log = open(self.kubelet_log, "a", encoding="utf-8")  # noqa: SIM115
        self.kubelet = subprocess.Popen(
            ["nsenter", f"--net=/run/netns/{self.netns}", "--", sys.executable, str(KUBELET),
             "--config=/var/lib/kubelet/config.yaml", "--kubeconfig=/etc/kubernetes/kubelet.conf",
             f"--node-ip={self.ip}", f"--hostname-override={self.name}",
             "--container-runtime-endpoint=unix:///var/run/crio/crio.sock"],
            env=env, stdout=log, stderr=subprocess.STDOUT)
        log.close()

    def stop_kubelet(self):
        if self.kubelet and self.kubelet.poll() is None:
            self.kubelet.send_signal(signal.SIGTERM)
            return self.kubelet.wait(timeout=20)
        return self.kubelet.returncode if self.kubelet else None

    def runtime(self, cidr):
        return PodRuntime(cidr, self.root / "run/kubelab-podrt")


@pytest.fixture(scope="module")
def lab():
    if os.geteuid() != 0:
        pytest.skip("needs root for network namespaces")
    for tool in ("ip", "bridge", "nginx", "busybox", "setpriv", "nsenter", "unshare", "nft"):
        if shutil.which(tool) is None and not os.path.exists(f"/usr/sbin/{tool}"):
            pytest.skip(f"needs {tool}")
    prefix = f"na{os.getpid() % 100000}"
    ns = {"sw": f"{prefix}-sw", "na": f"{prefix}-na", "nb": f"{prefix}-nb"}
    host_link = f"{prefix}h"
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    os.chmod(workdir, 0o755)
    before = set(_run("ip", "netns", "list").split())
    api = None
    nodes = {}
    try:
        for name in ns.values():
            _run("ip", "netns", "add", name)
            _run("ip", "-n", name, "link", "set", "lo", "up")
        _run("ip", "-n", ns["sw"], "link", "add", "br0", "type", "bridge")
        _run("ip", "-n", ns["sw"], "link", "set", "br0", "up")
        for node, addr in NODES.items():
            _run("ip", "-n", ns["sw"], "link", "add", f"to-{node}", "type", "veth", "peer", "name", "eth0",
                 "netns", ns[node])
            _run("ip", "-n", ns["sw"], "link", "set", f"to-{node}", "master", "br0", "up")
            _run("ip", "-n", ns[node], "addr", "add", f"{addr}/24", "dev", "eth0")
            _run("ip", "-n", ns[node], "link", "set", "eth0", "up")
            _run("ip", "netns", "exec", ns[node], "sysctl", "-qw", "net.ipv4.ip_forward=1")
        # the test's own leg on the node network (as the controller reaches node IPs in the lab)
        _run("ip", "link", "add", host_link, "type", "veth", "peer", "name", "to-host", "netns", ns["sw"])
        _run("ip", "-n", ns["sw"], "link", "set", "to-host", "master", "br0", "up")
        _run("ip", "addr", "add", f"{HOST_IP}/24", "dev", host_link)
        _run("ip", "link", "set", host_link, "up")
        api = NetnsKubeApi(workdir, ns["na"], NODES["na"]).start()
        client = Client(api.kubeconfig)
        client.request("POST", "/api/v1/namespaces/kube-system/configmaps", {
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kubeadm-config", "namespace": "kube-system"},
            "data": {"ClusterConfiguration": "networking:\n  podSubnet: 10.244.0.0/16\n  serviceSubnet: 10.96.0.0/12\n"}})
        # the CNI manifest's ConfigMap (kube-flannel.yml): the agent programs its backend
        client.request("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                      "metadata": {"name": "kube-flannel"}})
        client.request("POST", "/api/v1/namespaces/kube-flannel/configmaps", {
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kube-flannel-cfg", "namespace": "kube-flannel"},
            "data": {"net-conf.json": json.dumps({"Network": "10.244.0.0/16", "Backend": {"Type": "host-gw"}})}})
        kubeconfig_text = Path(api.kubeconfig).read_text()
        for node in NODES:
            nodes[node] = Node(node, ns[node], workdir, kubeconfig_text)
            nodes[node].start_crio()
            nodes[node].start_kubelet()

        def registered():
            items = {n["metadata"]["name"]: n for n in client.list("nodes")}
            return len(items) == 2 and all(n.get("spec", {}).get("podCIDR") for n in items.values()) and items
        by_name = _wait("both nodes registered with a podCIDR", registered, 30)
        cidrs = {name: n["spec"]["podCIDR"] for name, n in by_name.items()}
        yield {"ns": ns, "api": api, "client": client, "nodes": nodes, "cidrs": cidrs, "workdir": workdir}
    finally:
        for node in nodes.values():
            try:
                node.stop_kubelet()
            except Exception:  # noqa: BLE001
                if node.kubelet:
                    node.kubelet.kill()
            state = node.root / "run/kubelab-podrt"
            if (state / "pods").exists():
                rt = PodRuntime("10.244.250.0/24", state)
                for key in rt.pods():
                    rt.delete_pod(*key.split("_", 1), grace=0)
            if node.crio and node.crio.poll() is None:
                node.crio.terminate()
                node.crio.wait(timeout=10)
        if api is not None:
            api.stop()
        subprocess.run(["ip", "link", "delete", host_link], capture_output=True, check=False)
        for name in ns.values():
            subprocess.run(["ip", "netns", "delete", name], capture_output=True, check=False)
        left = set(_run("ip", "netns", "list").split()) - before
        shutil.rmtree(workdir, ignore_errors=True)
        assert not [n for n in left if n.startswith(("podrt-", prefix))], left
        assert host_link not in _run("ip", "-o", "link", "show")


# ---- helpers -----------------------------------------------------------------------
def _pod(name, node, image, command=None, add=(), **spec):
    container = {"name": name.split("-")[0], "image": image}
    if command:
        container["command"] = command
    if add:
        container["securityContext"] = {"capabilities": {"add": list(add)}}
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
            "spec": {"nodeName": node, "containers": [container], "terminationGracePeriodSeconds": 1, **spec}}
    return body


def _create(lab, body):
    return lab["client"].create("pods", body["metadata"]["namespace"], body)


def _get(lab, name, namespace="default"):
    return lab["client"].get("pods", namespace, name)


def _running(lab, name, timeout=30):
    def check():
        pod = _get(lab, name)
        status = (pod or {}).get("status") or {}
        if status.get("phase") == "Running" and any(
                c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions") or []):
            return pod
        return None
    return _wait(f"pod {name} Running and Ready", check, timeout)


def _delete(lab, name, node):
    try:
        lab["client"].delete("pods", "default", name)
    except ApiError:
        pass
    state = lab["nodes"][node].root / "run/kubelab-podrt/pods" / f"default_{name}"
    _wait(f"pod {name} gone from {node}", lambda: not state.exists(), 30)


def _http(method, url, body=None, timeout=30):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - test namespace address
            return resp.status, resp.read().decode(), resp.headers.get("Content-Type")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(), exc.headers.get("Content-Type")


def _exec(lab, node, name, container, command, timeout=20):
    code, text, _ = _http("POST", f"http://{NODES[node]}:10250/exec/default/{name}/{container}",
                          {"command": command, "timeout": timeout}, timeout=timeout + 10)
    return code, json.loads(text)


def _assert_fetches_nginx(lab, node, name, container, ip, tries=30):
    """busybox ``name`` on ``node`` GETs nginx's welcome page from ``ip`` (exec over the HTTP link), retried."""
    res = None
    for _ in range(tries):
        code, res = _exec(lab, node, name, container, ["wget", "-qO-", f"http://{ip}/"])
        if code == 200 and res["exitCode"] == 0:
            assert "<title>Welcome to nginx!</title>" in res["stdout"], res
            return
        time.sleep(0.3)
    raise AssertionError(f"{name} on {node} got no page from {ip}: {res}")


def _capeff(lab, node, name, container):
    code, res = _exec(lab, node, name, container, ["cat", "/proc/1/status"])
    assert code == 200 and res["exitCode"] == 0, res
    return int(re.search(r"CapEff:\s*([0-9a-f]+)", res["stdout"]).group(1), 16)


def _state(lab, node, name):
    return json.loads((lab["nodes"][node].root / "run/kubelab-podrt/pods" / f"default_{name}" / "pod.json").read_text())


# ---- tests ---------------------------------------------------------------------------
def test_pods_run_report_status_and_reach_each_other(lab):
    client, cidrs = lab["client"], lab["cidrs"]
    node = client.get("nodes", None, "na")
    assert node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"] == 10250
    # flannel host-gw: each node routes the other's podCIDR via its InternalIP
    _wait("host-gw route on na", lambda: f"via {NODES['nb']}" in _run("ip", "-n", lab["ns"]["na"], "route", "show",
                                                                     cidrs["nb"]), 10)
    _wait("host-gw route on nb", lambda: f"via {NODES['na']}" in _run("ip", "-n", lab["ns"]["nb"], "route", "show",
                                                                     cidrs["na"]), 10)
    _create(lab, _pod("nginx", "nb", NGINX))
    _create(lab, _pod("client", "na", BUSYBOX, SLEEP))
    web = _running(lab, "nginx")
    cli = _running(lab, "client")
    import ipaddress  # noqa: PLC0415
    assert ipaddress.ip_address(web["status"]["podIP"]) in ipaddress.ip_network(cidrs["nb"])
    assert ipaddress.ip_address(cli["status"]["podIP"]) in ipaddress.ip_network(cidrs["na"])
    assert web["status"]["hostIP"] == NODES["nb"]
    cs = web["status"]["containerStatuses"][0]
    assert cs["ready"] is True and cs["restartCount"] == 0 and "running" in cs["state"]
    # the pod's resolv.conf: clusterDNS and the search list from the kubelet config (ClusterFirst)
    code, res = _exec(lab, "na", "client", "client", ["cat", "/etc/resolv.conf"])
    assert code == 200 and "nameserver 10.96.0.10" in res["stdout"]
    assert "search default.svc.cluster.local svc.cluster.local cluster.local lab.example" in res["stdout"]
    # a pod on na fetches nginx's page on nb through the host-gw routes (exec over the HTTP link)
    _assert_fetches_nginx(lab, "na", "client", "client", web["status"]["podIP"])
    # containerLogs over the link: nginx's access line for the client's address
    def logged():
        code, text, ctype = _http("GET", f"http://{NODES['nb']}:10250/containerLogs/default/nginx/nginx")
        return code == 200 and ctype.startswith("text/plain") and cli["status"]["podIP"] in text and text
    text = _wait("nginx access line", logged, 10)
    assert '"GET / HTTP/1.1" 200' in text
    code, text, _ = _http("GET", f"http://{NODES['nb']}:10250/containerLogs/default/nginx/nginx?tailLines=1")
    assert code == 200 and len(text.splitlines()) == 1
    # exec: stdout, stderr and exit code passed on; refusals as wiring.md says
    code, res = _exec(lab, "na", "client", "client", ["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert (code, res["stdout"], res["stderr"], res["exitCode"]) == (200, "out\n", "err\n", 3)
    code, res = _exec(lab, "na", "client", "client", ["sleep", "5"], timeout=1)
    assert code == 200 and res["exitCode"] is None and res["timedOut"] is True
    code, res = _exec(lab, "na", "client", "client", ["/bin/bash", "-c", "true"])  # not in the busybox image
    assert code == 500 and res["reason"] == "InternalError" and "executable file not found" in res["message"]
    code, res = _exec(lab, "na", "nosuch", "client", ["true"])
    assert code == 404 and res["reason"] == "NotFound"
    code, res = _exec(lab, "na", "client", "other", ["true"])
    assert code == 404 and res["reason"] == "NotFound"
    code, res = _exec(lab, "nb", "client", "client", ["true"])  # the pod runs on na, not nb
    assert code == 404


def test_capabilities_are_crio_config_at_start(lab):
    node = lab["nodes"]["na"]
    _create(lab, _pod("caps-old", "na", BUSYBOX, SLEEP))
    _running(lab, "caps-old")
    defaults = capmod.mask(capmod.CRIO_DEFAULT_CAPABILITIES)
    assert _capeff(lab, "na", "caps-old", "caps") == defaults
    # the admin adds NET_RAW to CRI-O's default_capabilities and restarts crio
    dropin = node.root / "etc/crio/crio.conf.d/20-net-raw.conf"
    caps = ", ".join(f'"{c}"' for c in [*capmod.CRIO_DEFAULT_CAPABILITIES, "NET_RAW"])
    dropin.write_text(f"[crio.runtime]\ndefault_capabilities = [{caps}]\n")
    try:
        node.stop_crio()
        node.start_crio()
        time.sleep(2)  # a few sync rounds: the running pod is not touched
        assert _capeff(lab, "na", "caps-old", "caps") == defaults
        assert _state(lab, "na", "caps-old")["restart_count"] == 0
        # a pod created now gets the new set
        _create(lab, _pod("caps-new", "na", BUSYBOX, SLEEP))
        _running(lab, "caps-new")
        assert _capeff(lab, "na", "caps-new", "caps") == defaults | (1 << NET_RAW_BIT)
        # recreated, the old pod gets it too
        _delete(lab, "caps-old", "na")
        _create(lab, _pod("caps-old", "na", BUSYBOX, SLEEP))
        _running(lab, "caps-old")
        assert _capeff(lab, "na", "caps-old", "caps") == defaults | (1 << NET_RAW_BIT)
    finally:
        dropin.unlink(missing_ok=True)
        node.stop_crio()
        node.start_crio()
        for name in ("caps-old", "caps-new"):
            _delete(lab, name, "na")


def test_deleting_the_pod_stops_it_and_cleans_up(lab):
    _create(lab, _pod("gone", "nb", BUSYBOX, SLEEP))
    _running(lab, "gone")
    state = _state(lab, "nb", "gone")
    assert state["netns"] in _run("ip", "netns", "list")
    pid = state["init_pid"]
    assert Path(f"/proc/{pid}").exists()
    lab["client"].delete("pods", "default", "gone")
    _wait("pod directory removed", lambda: not (lab["nodes"]["nb"].root / "run/kubelab-podrt/pods/default_gone").exists())
    assert state["netns"] not in _run("ip", "netns", "list")
    assert state["veth"] not in _run("ip", "-n", lab["ns"]["nb"], "-o", "link", "show")
    _wait("container process gone", lambda: not Path(f"/proc/{pid}").exists(), 5)
    code, res = _exec(lab, "nb", "gone", "gone", ["true"])
    assert code == 404


def test_unmappable_image_is_err_image_pull_then_back_off(lab):
    _create(lab, _pod("badimage", "nb", "quay.io/example/app:1.0"))

    def err_image_pull():
        pod = _get(lab, "badimage")
        statuses = (pod.get("status") or {}).get("containerStatuses") or []
        waiting = statuses and statuses[0]["state"].get("waiting")
        return waiting and waiting.get("reason") == "ErrImagePull" and pod["status"]
    # the first failed pull is ErrImagePull, only then the back-off
    status = _wait("ErrImagePull", err_image_pull, 20, interval=0.05)
    assert status["phase"] == "Pending"
    assert status["containerStatuses"][0]["state"]["waiting"].get("message")

    def backoff():
        st = _get(lab, "badimage")["status"]["containerStatuses"][0]["state"]["waiting"]
        return st["reason"] == "ImagePullBackOff" and st
    st = _wait("ImagePullBackOff", backoff, 10)
    assert st["message"] == 'Back-off pulling image "quay.io/example/app:1.0"'
    assert not (lab["nodes"]["nb"].root / "run/kubelab-podrt/pods/default_badimage").exists()
    ready = next(c for c in _get(lab, "badimage")["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False"
    lab["client"].delete("pods", "default", "badimage")


def test_killed_container_is_restarted(lab):
    _create(lab, _pod("crash", "na", BUSYBOX, SLEEP))
    pod0 = _running(lab, "crash")
    first, ip0 = pod0["status"]["containerStatuses"][0], pod0["status"]["podIP"]
    state = _state(lab, "na", "crash")
    os.kill(state["init_pid"], signal.SIGKILL)

    def restarted():
        pod = _get(lab, "crash")
        cs = pod["status"]["containerStatuses"][0]
        return cs["restartCount"] == 1 and "running" in cs["state"] and pod
    pod = _wait("restartCount 1 and running again", restarted, 20)
    cs = pod["status"]["containerStatuses"][0]
    assert cs["containerID"] != first["containerID"]
    assert cs["lastState"]["terminated"]["exitCode"] == 137
    assert cs["lastState"]["terminated"]["reason"] == "Error"
    assert pod["status"]["podIP"] == ip0  # same sandbox
    new = _state(lab, "na", "crash")
    assert new["init_pid"] != state["init_pid"] and new["netns"] == state["netns"]
    code, res = _exec(lab, "na", "crash", "crash", ["true"])
    assert code == 200 and res["exitCode"] == 0
    # a second crash within the back-off window waits: CrashLoopBackOff, back-off 10s
    os.kill(new["init_pid"], signal.SIGKILL)

    def crash_loop():
        cs = _get(lab, "crash")["status"]["containerStatuses"][0]
        return cs["state"].get("waiting", {}).get("reason") == "CrashLoopBackOff" and cs
    cs = _wait("CrashLoopBackOff", crash_loop, 10)
    assert cs["state"]["waiting"]["message"].startswith("back-off 10s restarting failed container=crash pod=crash_default(")
    assert _get(lab, "crash")["status"]["phase"] == "Running"
    _wait("second restart after 10s", lambda: _get(lab, "crash")["status"]["containerStatuses"][0]["restartCount"] == 2,
          20)
    _delete(lab, "crash", "na")


def test_kube_proxy_table_when_the_daemonset_exists(lab):
    table = ["ip", "netns", "exec", lab["ns"]["nb"], "nft", "list", "table", "ip", "kube-proxy"]
    assert subprocess.run(table, capture_output=True, check=False).returncode != 0
    lab["client"].request("POST", "/apis/apps/v1/namespaces/kube-system/daemonsets", {
        "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "kube-proxy", "namespace": "kube-system"},
        "spec": {"selector": {"matchLabels": {"k8s-app": "kube-proxy"}},
                 "template": {"metadata": {"labels": {"k8s-app": "kube-proxy"}},
                              "spec": {"containers": [{"name": "kube-proxy", "image": "registry.k8s.io/kube-proxy:v1.35.0"}]}}}})
    lab["client"].create("services", "default", {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"},
        "spec": {"ports": [{"name": "http", "port": 80}], "selector": {"app": "web"}}})
    svc = lab["client"].get("services", "default", "web")
    text = _wait("kube-proxy table", lambda: subprocess.run(table, capture_output=True, text=True,
                                                             check=False).stdout, 10)
    assert "table ip kube-proxy" in text and svc["spec"]["clusterIP"] in text


def test_coredns_image_serves_the_apis_services(lab):
    client = lab["client"]
    if client.get("services", "default", "web") is None:
        client.create("services", "default", {
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"},
            "spec": {"ports": [{"name": "http", "port": 80}], "selector": {"app": "web"}}})
    cip = client.get("services", "default", "web")["spec"]["clusterIP"]
    dns = _pod("coredns", "nb", "registry.k8s.io/coredns/coredns:v1.12.1", dnsPolicy="Default")
    dns["spec"]["containers"][0]["args"] = ["-conf", "/etc/coredns/Corefile"]
    dns["spec"]["containers"][0]["securityContext"] = {
        "capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]}}
    _create(lab, dns)
    dns_ip = _running(lab, "coredns")["status"]["podIP"]
    # dnsPolicy Default: the node's resolv.conf
    _create(lab, _pod("resolver", "na", BUSYBOX, SLEEP))
    _running(lab, "resolver")

    def answered():
        code, res = _exec(lab, "na", "resolver", "resolver",
                          ["nslookup", "web.default.svc.cluster.local", dns_ip], timeout=5)
        return code == 200 and res["exitCode"] == 0 and res["stdout"]
    out = _wait("nslookup through the coredns pod", answered, 20, 0.5)
    assert f"Address: {cip}" in out
    state = _state(lab, "nb", "coredns")
    assert state["capabilities"] == ["NET_BIND_SERVICE"]
    code, text, _ = _http("GET", f"http://{NODES['nb']}:10250/containerLogs/default/coredns/coredns")
    assert code == 200 and "kube-dns: serving 0.0.0.0:53" in text
    resolv = (Path(f"/proc/{state['init_pid']}/root/etc/resolv.conf"))
    assert "nameserver 198.18.0.53" in resolv.read_text()
    for name, node in (("coredns", "nb"), ("resolver", "na")):
        _delete(lab, name, node)


def test_kubelet_restart_leaves_and_adopts_pods(lab):
    node = lab["nodes"]["na"]
    _create(lab, _pod("survivor", "na", BUSYBOX, SLEEP))
    before = _running(lab, "survivor")["status"]["containerStatuses"][0]
    pid = _state(lab, "na", "survivor")["init_pid"]
    assert node.stop_kubelet() == 0
    assert Path(f"/proc/{pid}").exists(), "SIGTERM to the kubelet killed a pod"
    node.start_kubelet()
    def serving():
        try:
            return _exec(lab, "na", "survivor", "survivor", ["true"])[0] == 200
        except urllib.error.URLError:  # not listening yet
            return False
    _wait("exec server back", serving, 20)
    time.sleep(2)
    after = _get(lab, "survivor")["status"]["containerStatuses"][0]
    assert after["containerID"] == before["containerID"] and after["restartCount"] == 0
    assert _state(lab, "na", "survivor")["init_pid"] == pid
    # the adopted pod is still managed: a kill is seen and restarted
    os.kill(pid, signal.SIGKILL)
    _wait("adopted pod restarted", lambda: _get(lab, "survivor")["status"]["containerStatuses"][0]["restartCount"] == 1,
          20)
    _delete(lab, "survivor", "na")


def test_pod_with_deletion_timestamp_is_stopped(lab):
    body = _pod("held", "nb", BUSYBOX, SLEEP)
    body["metadata"]["finalizers"] = ["example.com/hold"]
    _create(lab, body)
    _running(lab, "held")
    state = _state(lab, "nb", "held")
    lab["client"].delete("pods", "default", "held")
    assert _get(lab, "held")["metadata"].get("deletionTimestamp")  # the finalizer keeps the object
    _wait("held pod stopped and removed", lambda: not (lab["nodes"]["nb"].root / "run/kubelab-podrt/pods/default_held").exists(), 20)
    assert state["netns"] not in _run("ip", "netns", "list")
    lab["client"].patch("pods", "default", "held", {"metadata": {"finalizers": None}})
    _wait("object gone", lambda: _get(lab, "held") is None, 10)


def test_exec_and_logs_through_the_api_emulator(lab):
    """kubectl-style exec and logs: the API emulator forwards them to the pod's node agent."""
    kubernetes = pytest.importorskip("kubernetes")
    from kubernetes.stream import stream  # noqa: PLC0415

    _create(lab, _pod("viaapi", "nb", BUSYBOX, ["/bin/sh", "-c", "echo started; sleep inf"]))
    _running(lab, "viaapi")
    core = kubernetes.client.CoreV1Api(lab["api"].client())
    out = stream(core.connect_get_namespaced_pod_exec, "viaapi", "default", command=["sh", "-c", "echo via-api"],
                 container="viaapi", stderr=True, stdin=False, stdout=True, tty=False)
    assert out == "via-api\n"
    assert _wait("log line", lambda: "started" in core.read_namespaced_pod_log("viaapi", "default"), 10)
    _delete(lab, "viaapi", "nb")


def test_flannel_vxlan_backend(lab):
    """net-conf.json's Backend vxlan: flannel.1 devices, annotations, onlink routes; pods still reach each other."""
    client, cidrs, ns = lab["client"], lab["cidrs"], lab["ns"]
    client.patch("configmaps", "kube-flannel", "kube-flannel-cfg", {"data": {"net-conf.json": json.dumps(
        {"Network": "10.244.0.0/16", "Backend": {"Type": "vxlan"}})}})
    import ipaddress  # noqa: PLC0415
    gw = {n: str(ipaddress.ip_network(c).network_address) for n, c in cidrs.items()}
    try:
        for node, other in (("na", "nb"), ("nb", "na")):
            _wait(f"vxlan route on {node}", lambda node=node, other=other: f"via {gw[other]} dev flannel.1" in _run(
                "ip", "-n", ns[node], "route", "show", cidrs[other]), 15)
            link = _run("ip", "-n", ns[node], "-d", "link", "show", "flannel.1")
            assert "vxlan id 1 local %s" % NODES[node] in link and "dstport 8472" in link and "nolearning" in link
            assert f"inet {gw[node]}/32" in _run("ip", "-n", ns[node], "-o", "-4", "addr", "show", "dev", "flannel.1")
            ann = client.get("nodes", None, node)["metadata"]["annotations"]
            assert ann["flannel.alpha.coreos.com/backend-type"] == "vxlan"
            assert ann["flannel.alpha.coreos.com/public-ip"] == NODES[node]
            mac = json.loads(ann["flannel.alpha.coreos.com/backend-data"])["VtepMAC"]
            # the peer knows this node's VTEP: ARP entry for the subnet's .0 and FDB -> public IP
            _wait(f"{other} has the ARP entry of {node}'s VTEP", lambda other=other, node=node, mac=mac: mac in _run(
                "ip", "-n", ns[other], "neigh", "show", gw[node], "dev", "flannel.1"), 15)
            fdb = _run("bridge", "-n", ns[other], "fdb", "show", "dev", "flannel.1")
            assert f"{mac} dst {NODES[node]} self permanent" in fdb, fdb
        _create(lab, _pod("vx-web", "nb", NGINX))
        _create(lab, _pod("vx-cli", "na", BUSYBOX, SLEEP))
        web = _running(lab, "vx-web")
        _running(lab, "vx-cli")
        _assert_fetches_nginx(lab, "na", "vx-cli", "vx", web["status"]["podIP"])
        # the node itself reaches the other node's pod from its flannel.1 address (in the pod network)
        out = _run("ip", "-n", ns["na"], "route", "get", web["status"]["podIP"])
        assert f"src {gw['na']}" in out and "dev flannel.1" in out, out
    finally:
        _delete(lab, "vx-web", "nb")
        _delete(lab, "vx-cli", "na")


def test_no_new_pods_while_flannel_cannot_take_the_node(lab):
    """net-conf's Network must contain the node's podCIDR (flannel's kube subnet manager); until then no sandbox."""
    client = lab["client"]
    good = client.get("configmaps", "kube-flannel", "kube-flannel-cfg")["data"]["net-conf.json"]
    bad = json.dumps(dict(json.loads(good), Network="10.99.0.0/16"))
    client.patch("configmaps", "kube-flannel", "kube-flannel-cfg", {"data": {"net-conf.json": bad}})
    try:
        time.sleep(2.5)  # two route syncs: the agent has seen the new net-conf
        _create(lab, _pod("nocni", "na", BUSYBOX, SLEEP))
        time.sleep(3)
        state = lab["nodes"]["na"].root / "run/kubelab-podrt/pods/default_nocni"
        assert not state.exists()
        assert not (_get(lab, "nocni").get("status") or {}).get("podIP")
        log = lab["nodes"]["na"].kubelet_log.read_text()
        assert "doesn't contain" in log and "PodCIDR of the" in log
        assert "NetworkPluginNotReady" in log
    finally:
        client.patch("configmaps", "kube-flannel", "kube-flannel-cfg", {"data": {"net-conf.json": good}})
    _running(lab, "nocni")
    _delete(lab, "nocni", "na")
