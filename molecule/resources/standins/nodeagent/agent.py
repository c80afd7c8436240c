# TEST DOUBLE - used only by the kubelet stand-in (molecule/resources/standins), never by the roles.
"""The node agent of the kubelet stand-in: pods, status, routes, kube-proxy, exec/log.

Reimplemented from the kubelet's behaviour (kubernetes/kubernetes release-1.35
pkg/kubelet), flannel's host-gw backend and CRI-O's container creation; every
behaviour and its upstream file are listed in CONTRACT.md. Python 3.11
stdlib + PyYAML (through controllers.kclient).
"""

from __future__ import annotations

import copy
import datetime
import http.client
import http.server
import ipaddress
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import tomllib
import urllib.parse
from pathlib import Path
from typing import Any, Callable

LIB = Path(__file__).resolve().parent.parent  # the stand-ins' library directory
for _sub in ("", "kube-proxy", "dns"):
    if str(LIB / _sub) not in sys.path:
        sys.path.insert(0, str(LIB / _sub))

from controllers.kclient import ApiError  # noqa: E402
from podrt import caps as capmod  # noqa: E402
from podrt.routes import RouteError, host_gw_routes  # noqa: E402
from podrt.runtime import PodRuntime, PodRuntimeError, image_kind  # noqa: E402
from podrt.status import waiting_status  # noqa: E402

# pkg/kubelet/kubelet.go: backOffPeriod 10s, MaxContainerBackOff 300s (container restarts and image pulls)
BACKOFF_INITIAL = 10.0
BACKOFF_MAX = 300.0
POLL = 1.0  # the stand-in polls (no watches)
KUBE_PROXY_FULL_SYNC = 30.0  # kube-proxy --sync-period default
FLANNEL_CONFIGMAP = "kube-flannel-cfg"  # kube-flannel.yml's ConfigMap (net-conf.json)
FLANNEL_PREFIX = "flannel.alpha.coreos.com/"  # flannel's Node annotations (pkg/subnet/kube)
# kubelet pod_workers.go / kubelet.go (runtime network not ready), CRI-O's NetworkReady reason
NETWORK_NOT_READY = ("network is not ready: container runtime network not ready: NetworkReady=false "
                     "reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized")


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=datetime.timezone.utc).timestamp()
    except ValueError:
        return None


def go_duration(seconds: float) -> str:
    """Go's time.Duration String() for whole seconds: 10s, 1m20s, 5m0s."""
    total = int(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


class BackOff:
    """client-go util/flowcontrol/backoff.go (the kubelet's container and image back-off)."""

    def __init__(self, initial: float = BACKOFF_INITIAL, maximum: float = BACKOFF_MAX,
                 clock: Callable[[], float] = time.time):
        self.initial, self.max, self.clock = initial, maximum, clock
        self.entries: dict[str, tuple[float, float]] = {}  # id -> (backoff, lastUpdate)
        self.lock = threading.Lock()

    def _expired(self, event: float, last: float) -> bool:
        return event - last > 2 * self.max  # hasExpired: older than twice the maximum

    def next(self, key: str) -> None:
        with self.lock:
            now = self.clock()
            entry = self.entries.get(key)
            if entry is None or self._expired(now, entry[1]):
                self.entries[key] = (self.initial, now)
            else:
                self.entries[key] = (min(entry[0] * 2, self.max), now)

    def get(self, key: str) -> float:
        with self.lock:
            entry = self.entries.get(key)
            return entry[0] if entry else 0.0

    def in_backoff_since(self, key: str, event: float) -> bool:
        """IsInBackOffSince: the time since ``event`` (the container's finish) is within the window."""
        with self.lock:
            entry = self.entries.get(key)
            if entry is None or self._expired(event, entry[1]):
                return False
            return self.clock() - event < entry[0]

    def in_backoff_since_update(self, key: str) -> bool:
        """IsInBackOffSinceUpdate: the time since the last Next() is within the window."""
        with self.lock:
            entry = self.entries.get(key)
            now = self.clock()
            if entry is None or self._expired(now, entry[1]):
                return False
            return now - entry[1] < entry[0]

    def forget(self, prefix: str) -> None:
        with self.lock:
            for key in [k for k in self.entries if k.startswith(prefix)]:
                del self.entries[key]


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = 5.0):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.unix_path)
        self.sock = sock


def crio_default_capabilities(socket_path: str = "/var/run/crio/crio.sock") -> list[str]:
    """CRI-O's effective ``default_capabilities``, read from the running daemon as `crio status
    config` does (GET /config over its socket: the TOML of the configuration it loaded at start).
    A missing key means CRI-O's built-in list. OSError when CRI-O does not answer."""
    conn = _UnixHTTPConnection(socket_path)
    try:
        conn.request("GET", "/config")
        resp = conn.getresponse()
        body = resp.read().decode()
    finally:
        conn.close()
    if resp.status != 200:
        raise OSError(f"crio {socket_path} GET /config: {resp.status}")
    config = tomllib.loads(body)
    caps = ((config.get("crio") or {}).get("runtime") or {}).get("default_capabilities")
    if caps is None:
        return list(capmod.CRIO_DEFAULT_CAPABILITIES)
    return [capmod.canonical(c) for c in caps]


def _pod_ref(pod: dict) -> str:
    meta = pod.get("metadata") or {}
    return f"{meta.get('name')}_{meta.get('namespace')}({meta.get('uid', '')})"  # format.Pod


class NodeAgent:
    """Runs the pods of ``node_name`` (threads; ``start()``/``stop()``). ``stop()`` leaves them running."""

    def __init__(self, client, node_name: str, node_ip: str, *, root: str = "",
                 state_dir: str = "/run/kubelab-podrt", crio_socket: str = "/var/run/crio/crio.sock",
                 kubelet_config: dict | None = None, kubeconfig: str = "/etc/kubernetes/kubelet.conf",
                 port: int = 10250, nft: list[str] | None = None, log: Callable[..., None] | None = None,
                 launcher: list[str] | None = None):
        self.client = client
        self.node_name = node_name
        self.node_ip = node_ip
        self.root = root
        self.state_dir = self.p(state_dir)
        self.crio_socket = self.p(crio_socket)
        self.config = kubelet_config or {}
        self.kubeconfig = self.p(kubeconfig)
        self.port = port
        self.nft = nft or ["nft"]
        self._log = log or (lambda level, msg, **kv: sys.stderr.write(f"{level} {msg} {kv}\n"))
        self.launcher = launcher if launcher is not None else self._default_launcher()
        self.runtime: PodRuntime | None = None
        self.pod_cidr: str | None = None
        self.container_backoff = BackOff()
        self.image_backoff = BackOff()
        self.waiting: dict[str, dict] = {}  # key -> the status of a pod that could not start
        self.first_seen: dict[str, str] = {}
        self.terminating: dict[str, threading.Thread] = {}
        self.lock = threading.RLock()
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []
        self.server: http.server.ThreadingHTTPServer | None = None
        self.routes_file = Path(self.state_dir) / "flannel-routes.json"
        self.flannel_missing_logged = False
        self.flannel_backend_logged: str | None = None
        self.network_ready = False  # flannel programmed this node (the CNI is "initialized")
        self.network_logged: dict[str, str] = {}
        self.vxlan_peers: dict[str, tuple] = {}
        self.kube_proxy_last: str | None = None
        self.kube_proxy_full = 0.0

    def p(self, path: str) -> str:
        return self.root + path if self.root and path.startswith("/") else path

    def log(self, level: str, msg: str, **kv) -> None:
        try:
            self._log(level, msg, **kv)
        except Exception:  # noqa: BLE001 - logging never stops the agent
            pass

    def _default_launcher(self) -> list[str]:
        """On a systemd host, each pod in its own transient scope (CRI-O puts conmon and the container
        in scopes of their own): `systemctl stop kubelet` does not kill them."""
        if self.root or not os.path.isdir("/run/systemd/system") or not shutil.which("systemd-run"):
            return []
        launcher = [shutil.which("systemd-run"), "--scope", "--quiet", "--collect"]
        try:
            probe = subprocess.run([*launcher, "true"], capture_output=True, text=True, timeout=20, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            probe = None
            err = str(exc)
        if probe is None or probe.returncode != 0:
            self.log("E", "systemd-run --scope does not work here: pods stay in the kubelet's cgroup",
                     err=err if probe is None else probe.stderr.strip())
            return []
        return launcher

    # ---- life cycle -----------------------------------------------------------------
    def start(self) -> "NodeAgent":
        self.serve()
        for name, func in (("pods", self.sync_pods), ("routes", self.sync_routes),
                           ("kube-proxy", self.sync_kube_proxy)):
            thread = threading.Thread(target=self._loop, args=(name, func), name=f"nodeagent-{name}", daemon=True)
            thread.start()
            self.threads.append(thread)
        self.log("I", "node agent started", node=self.node_name, port=self.port)
        return self

    def stop(self) -> None:
        """Stop the loops and the server. The pods keep running (a kubelet restart does not kill them)."""
        self.stopping.set()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        for thread in self.threads:
            thread.join(timeout=10)

    def _loop(self, name: str, func: Callable[[], None]) -> None:
        while not self.stopping.is_set():
            try:
                func()
            except (ApiError, OSError, ValueError, KeyError, RuntimeError) as exc:
                self.log("E", f"{name} sync failed, will retry", err=exc)
            except Exception as exc:  # noqa: BLE001 - never crash the kubelet
                self.log("E", f"{name} sync failed unexpectedly, will retry", err=repr(exc))
            self.stopping.wait(POLL)

    # ---- node --------------------------------------------------------------------------
    def _own_node(self) -> dict | None:
        return self.client.get("nodes", None, self.node_name)

    def _ensure_runtime(self) -> PodRuntime | None:
        if self.runtime is not None:
            return self.runtime
        node = self._own_node()
        cidr = ((node or {}).get("spec") or {}).get("podCIDR")
        if not cidr:
            return None
        self.pod_cidr = cidr
        self.runtime = PodRuntime(cidr, self.state_dir, node_name=self.node_name, node_ip=self.node_ip,
                                  dns_kubeconfig=self.kubeconfig, launcher=self.launcher)
        adopted = self.runtime.pods()
        if adopted:
            self.log("I", "adopting the pods the runtime already runs", pods=",".join(adopted))
        return self.runtime

    # ---- pods --------------------------------------------------------------------------
    def sync_pods(self) -> None:
        rt = self._ensure_runtime()
        if rt is None:
            return
        mine = [p for p in self.client.list("pods") if (p.get("spec") or {}).get("nodeName") == self.node_name]
        wanted = {}
        for pod in mine:
            meta = pod["metadata"]
            key = rt.key(meta.get("namespace") or "default", meta["name"])
            if meta.get("deletionTimestamp"):
                self._terminate(key, pod, grace=meta.get("deletionGracePeriodSeconds"), delete_api=True)
                continue
            wanted[key] = pod
        for key in rt.pods():
            if key not in wanted and key not in self.terminating:
                state = rt._load(key) or {}
                self._terminate(key, None, grace=state.get("grace"), delete_api=False)
        for key in list(self.waiting):
            if key not in wanted:
                self.waiting.pop(key, None)
                self.first_seen.pop(key, None)
        running = set(rt.pods())
        for key, pod in wanted.items():
            with self.lock:
                if key in self.terminating:
                    continue
            if key not in running and not self.network_ready:
                # kubelet: no new sandbox while the runtime's network is not ready
                # (no CNI: flannel has not programmed this node yet)
                if self.network_logged.get(key) != "not-ready":
                    self.log("E", "Error syncing pod, skipping", pod=key, err=NETWORK_NOT_READY)
                    self.network_logged[key] = "not-ready"
                continue
            self.network_logged.pop(key, None)
            try:
                status = self._sync_pod(rt, key, pod)
            except PodRuntimeError as exc:
                self.log("E", "Error syncing pod, skipping", pod=key, err=exc)
                continue
            if status is not None:
                self._write_status(pod, status)

    def _sync_pod(self, rt: PodRuntime, key: str, pod: dict) -> dict | None:
        meta, spec = pod["metadata"], pod.get("spec") or {}
        state = rt._load(key)
        if state is not None and meta.get("uid") and state.get("uid") != meta.get("uid"):
            # a new Pod object with the same name: the old sandbox goes first
            self._terminate(key, None, grace=state.get("grace"), delete_api=False)
            return None
        containers = spec.get("containers") or [{}]
        container = containers[0]
        cname = container.get("name", "")
        bkey = f"{meta.get('name')}_{meta.get('namespace')}_{meta.get('uid')}_{cname}"
        policy = spec.get("restartPolicy") or "Always"
        if state is None:
            if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                return None  # a finished pod is not started again
            return self._start_pod(rt, key, pod, container, bkey)
        status = rt.status(meta.get("namespace") or "default", meta["name"])
        cstatus = status["containerStatuses"][0]
        if "terminated" not in cstatus["state"]:
            return status
        code = cstatus["state"]["terminated"]["exitCode"]
        if policy == "Never" or (policy == "OnFailure" and code == 0):
            return status
        # kuberuntime_manager.go doBackOff: in back-off since the container finished?
        finished = _parse_time(cstatus["state"]["terminated"].get("finishedAt")) or time.time()
        if self.container_backoff.in_backoff_since(bkey, finished):
            wait = go_duration(self.container_backoff.get(bkey))
            return self._crash_loop_status(status, pod, cname, wait)
        try:
            caps = crio_default_capabilities(self.crio_socket)
        except OSError as exc:
            self.log("E", "CRI-O does not answer: cannot create the container", pod=key, err=exc)
            return None
        self.container_backoff.next(bkey)
        self.log("I", "restarting container", pod=key, container=cname,
                 restartCount=int(cstatus.get("restartCount", 0)) + 1)
        return rt.restart_container(meta.get("namespace") or "default", meta["name"], caps)

    def _crash_loop_status(self, status: dict, pod: dict, cname: str, wait: str) -> dict:
        """The container waits in CrashLoopBackOff; its exit is lastState; the pod stays Running under
        restartPolicy Always (kubelet_pods.go getPhase counts it as stopped, not waiting)."""
        out = copy.deepcopy(status)
        cs = out["containerStatuses"][0]
        cs["lastState"] = {"terminated": cs["state"]["terminated"]}
        cs["state"] = {"waiting": {"reason": "CrashLoopBackOff",
                                   "message": f"back-off {wait} restarting failed container={cname} "
                                              f"pod={_pod_ref(pod)}"}}
        cs["ready"], cs["started"] = False, False
        policy = (pod.get("spec") or {}).get("restartPolicy") or "Always"
        out["phase"] = "Running" if policy == "Always" else "Pending"
        for cond in out["conditions"]:
            if cond["type"] in ("Ready", "ContainersReady"):
                cond["status"] = "False"
                cond["reason"] = "ContainersNotReady"
                cond["message"] = f"containers with unready status: [{cname}]"
        return out

    def _start_pod(self, rt: PodRuntime, key: str, pod: dict, container: dict, bkey: str) -> dict | None:
        meta, spec = pod["metadata"], pod.get("spec") or {}
        cname, image = container.get("name", ""), container.get("image", "")
        created = self.first_seen.setdefault(key, _now())
        ikey = f"{meta.get('uid')}_{image}"
        # images/image_manager.go EnsureImageExists: in back-off since the last failed pull?
        if self.image_backoff.in_backoff_since_update(ikey):
            return waiting_status(cname, image, "ImagePullBackOff", f'Back-off pulling image "{image}"',
                                  created, self.node_ip)
        try:
            image_kind(image)
        except PodRuntimeError as exc:
            self.image_backoff.next(ikey)
            self.log("E", "Failed to pull image", pod=key, image=image, err=exc)
            return waiting_status(cname, image, "ErrImagePull", str(exc), created, self.node_ip)
        if self.container_backoff.in_backoff_since_update(bkey) and key in self.waiting:
            return self.waiting[key]
        try:
            caps = crio_default_capabilities(self.crio_socket)
        except OSError as exc:
            self.log("E", "CRI-O does not answer: cannot create the pod sandbox", pod=key, err=exc)
            return waiting_status(cname, image, "ContainerCreating", "", created, self.node_ip)
        try:
            resolv = self._resolv_conf(pod)
            status = rt.run_pod(pod, caps, resolv)
        except (PodRuntimeError, ValueError) as exc:
            reason = getattr(exc, "reason", "CreateContainerConfigError")
            self.container_backoff.next(bkey)
            self.log("E", "Error syncing pod, skipping", pod=key, reason=reason, err=exc)
            self.waiting[key] = waiting_status(cname, image, reason, str(exc), created, self.node_ip)
            return self.waiting[key]
        self.waiting.pop(key, None)
        self.log("I", "started pod", pod=key, podIP=status.get("podIP"), capabilities=",".join(caps))
        return status

    def _resolv_conf(self, pod: dict) -> str:
        from kube_dns import pod_resolv_conf  # noqa: PLC0415

        spec = pod.get("spec") or {}
        host_file = self.p(self.config.get("resolvConf") or "/etc/resolv.conf")
        try:
            host = Path(host_file).read_text(encoding="utf-8")
        except OSError:
            host = ""
        return pod_resolv_conf(pod["metadata"].get("namespace") or "default",
                               self.config.get("clusterDNS") or [],
                               self.config.get("clusterDomain") or "cluster.local",
                               host, spec.get("dnsPolicy") or "ClusterFirst",
                               bool(spec.get("hostNetwork")), spec.get("dnsConfig"))

    def _write_status(self, pod: dict, status: dict) -> None:
        """status/status_manager.go: write the generated status when it differs from the API's."""
        current = pod.get("status") or {}
        merged = dict(current)
        merged.update(status)
        if merged == current:
            return
        body = copy.deepcopy(pod)
        body["status"] = merged
        meta = pod["metadata"]
        try:
            self.client.replace("pods", meta.get("namespace"), meta["name"], body, sub="status")
        except ApiError as exc:
            if exc.code not in (404, 409):  # gone, or changed under us: the next sync writes it
                raise

    def _terminate(self, key: str, pod: dict | None, grace, delete_api: bool) -> None:
        """A pod worker's termination (pod_workers.go): kill, clean up, then (deletionTimestamp) remove
        the API object with gracePeriodSeconds 0 and the Pod's UID as precondition."""
        with self.lock:
            if key in self.terminating:
                return
            thread = threading.Thread(target=self._terminate_worker, args=(key, pod, grace, delete_api),
                                      name=f"terminate-{key}", daemon=True)
            self.terminating[key] = thread
        thread.start()

    def _terminate_worker(self, key: str, pod: dict | None, grace, delete_api: bool) -> None:
        namespace, name = key.split("_", 1)
        try:
            rt = self.runtime
            if rt is not None and rt._load(key) is not None:
                self.log("I", "Killing pod", pod=key, gracePeriod=grace)
                rt.delete_pod(namespace, name, grace=None if grace is None else float(grace))
            uid = ((pod or {}).get("metadata") or {}).get("uid")
            self.container_backoff.forget(f"{name}_{namespace}_")
            self.waiting.pop(key, None)
            self.first_seen.pop(key, None)
            if delete_api and pod is not None:
                options = {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0}
                if uid:
                    options["preconditions"] = {"uid": uid}
                try:
                    self.client.request("DELETE", self.client.path("pods", namespace, name), options)
                except ApiError as exc:
                    if exc.code not in (404, 409):
                        raise
        except Exception as exc:  # noqa: BLE001 - retried by the next sync
            self.log("E", "Failed to terminate pod", pod=key, err=exc)
        finally:
            with self.lock:
                self.terminating.pop(key, None)

    # ---- flannel: the pod network between nodes ---------------------------------------
    # flannel-io/flannel v0.28.9: flanneld (the kube-flannel DaemonSet, which
    # nothing runs here) reads net-conf.json from its ConfigMap and programs
    # the backend it names. Here the agent does it, for "vxlan" (flannel's
    # default in kube-flannel.yml) and "host-gw"; without the ConfigMap no
    # CNI was applied and no node routes pods to another node's pods.
    def _flannel_netconf(self) -> dict | None:
        found = self.client.request("GET", "/api/v1/configmaps?fieldSelector=metadata.name%3D" + FLANNEL_CONFIGMAP)
        for cm in (found or {}).get("items") or []:
            if cm["metadata"].get("name") == FLANNEL_CONFIGMAP:
                try:
                    return json.loads((cm.get("data") or {}).get("net-conf.json") or "")
                except ValueError as exc:
                    self.log("E", "flannel: bad net-conf.json", err=exc)
                    return None
        return None

    def sync_routes(self) -> None:
        conf = self._flannel_netconf()
        if conf is None:
            self.network_ready = False
            if not self.flannel_missing_logged:
                self.log("W", "flannel: no ConfigMap %s (CNI not applied): no routes to other nodes' pods"
                         % FLANNEL_CONFIGMAP)
                self.flannel_missing_logged = True
            return
        self.flannel_missing_logged = False
        backend = conf.get("Backend") or {}
        btype = str(backend.get("Type") or "udp").lower()  # flannel's default when no Type is given
        nodes = self.client.list("nodes")
        usable = [n for n in nodes if (n.get("spec") or {}).get("podCIDR")
                  and any(a.get("type") == "InternalIP" for a in (n.get("status") or {}).get("addresses") or [])]
        own = next((n for n in usable if n["metadata"]["name"] == self.node_name), None)
        if own is None:
            return
        # flannel pkg/subnet/kube/kube.go: the node's podCIDR must lie in net-conf's Network
        try:
            network = ipaddress.ip_network(str(conf.get("Network") or ""))
            fits = ipaddress.ip_network(own["spec"]["podCIDR"]).subnet_of(network)
        except (ValueError, TypeError):
            network, fits = conf.get("Network"), False
        if not fits:
            self.network_ready = False
            msg = ('failed to acquire lease: subnet "%s" specified in the flannel net config doesn\'t contain '
                   '"%s" PodCIDR of the "%s" node' % (network, own["spec"]["podCIDR"], self.node_name))
            if self.flannel_backend_logged != msg:
                self.log("E", "flannel: " + msg)
                self.flannel_backend_logged = msg
            return
        if btype == "host-gw":
            try:
                routes = host_gw_routes(self.node_name, usable)
            except RouteError as exc:
                self.log("E", "host-gw: cannot compute routes", err=exc)
                return
        elif btype == "vxlan":
            routes = self._vxlan_routes(backend, usable)
            if routes is None:
                return
        else:
            self.network_ready = False
            if self.flannel_backend_logged != btype:
                self.log("E", "flannel: backend %r is not emulated (vxlan and host-gw are)" % btype)
                self.flannel_backend_logged = btype
            return
        self._install_routes(routes)
        self.network_ready = True

    def _vxlan_routes(self, backend: dict, nodes: list[dict]) -> list[dict] | None:
        """flannel's vxlan backend (pkg/backend/vxlan/vxlan.go, vxlan_network.go, device.go).

        Device ``flannel.<VNI>`` (VNI 1, UDP port 8472 = the kernel's default,
        ``nolearning``, ``local`` = the public IP on the external interface,
        MTU = that interface's - 50), address = the node's subnet's network
        address /32; the Node is annotated with ``backend-data``
        ``{"VNI", "VtepMAC"}``, ``backend-type``, ``public-ip`` and
        ``kube-subnet-manager``. For every other node with such annotations:
        a permanent ARP entry for its subnet's network address -> its VtepMAC,
        an FDB entry VtepMAC -> its public IP, and the route
        ``SUBNET via SUBNET.0 dev flannel.1 onlink``.
        """
        vni = int(backend.get("VNI") or 1)
        port = int(backend.get("Port") or 0) or 8472
        dev = "flannel.%d" % vni
        own = next(n for n in nodes if n["metadata"]["name"] == self.node_name)
        own_net = ipaddress.ip_network(own["spec"]["podCIDR"])
        ext = self._interface_of(self.node_ip)
        if ext is None:
            self.log("E", "vxlan: no interface holds the public IP", ip=self.node_ip)
            return None
        if self._link(dev) is None:
            mtu = int((self._link(ext) or {}).get("mtu") or 1500) - 50
            for argv in (["ip", "link", "add", dev, "type", "vxlan", "id", str(vni), "local", self.node_ip,
                          "dev", ext, "nolearning", "dstport", str(port)],
                         ["ip", "link", "set", dev, "mtu", str(mtu)],
                         ["ip", "link", "set", dev, "up"]):
                proc = subprocess.run(argv, capture_output=True, text=True, check=False)
                if proc.returncode != 0:
                    self.log("E", "vxlan: failed to create the device", dev=dev, err=proc.stderr.strip())
                    return None
            self.log("I", "vxlan: device created", dev=dev, local=self.node_ip, ext=ext, port=port)
        addr = "%s/32" % own_net.network_address
        if ("inet %s " % addr) not in subprocess.run(["ip", "-o", "-4", "addr", "show", "dev", dev],
                                                      capture_output=True, text=True, check=False).stdout:
            subprocess.run(["ip", "addr", "flush", "dev", dev], capture_output=True, check=False)
            subprocess.run(["ip", "addr", "add", addr, "dev", dev], capture_output=True, check=False)
        mac = (self._link(dev) or {}).get("address")
        if not mac:
            self.log("E", "vxlan: the device has no MAC address", dev=dev)
            return None
        want = {
            FLANNEL_PREFIX + "backend-data": json.dumps({"VNI": vni, "VtepMAC": mac}, separators=(",", ":")),
            FLANNEL_PREFIX + "backend-type": "vxlan",
            FLANNEL_PREFIX + "kube-subnet-manager": "true",
            FLANNEL_PREFIX + "public-ip": self.node_ip,
        }
        have = own["metadata"].get("annotations") or {}
        if any(have.get(k) != v for k, v in want.items()):
            self.client.patch("nodes", None, self.node_name, {"metadata": {"annotations": want}})
        routes = []
        for node in nodes:
            name = node["metadata"]["name"]
            if name == self.node_name:
                continue
            ann = node["metadata"].get("annotations") or {}
            try:
                data = json.loads(ann.get(FLANNEL_PREFIX + "backend-data") or "")
                peer_mac = data["VtepMAC"]
            except (ValueError, KeyError, TypeError):
                continue  # its flanneld has not registered yet
            public = ann.get(FLANNEL_PREFIX + "public-ip")
            net = ipaddress.ip_network(node["spec"]["podCIDR"])
            gw = str(net.network_address)
            state = (peer_mac, public, str(net))
            if self.vxlan_peers.get(name) != state:
                for argv in (["ip", "neigh", "replace", gw, "lladdr", peer_mac, "dev", dev, "nud", "permanent"],
                             ["bridge", "fdb", "replace", peer_mac, "dev", dev, "dst", public, "self", "permanent"]):
                    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
                    if proc.returncode != 0:
                        self.log("E", "vxlan: failed to program the peer", node=name, err=proc.stderr.strip())
                        break
                else:
                    self.vxlan_peers[name] = state
            routes.append({"node": name, "dst": str(net), "via": gw, "dev": dev,
                           "argv": ["ip", "route", "replace", str(net), "via", gw, "dev", dev, "onlink"]})
        return routes

    @staticmethod
    def _link(name: str) -> dict | None:
        """``ip -j link show dev NAME`` (not /sys: a process that only entered the
        node's network namespace still sees the sysfs of another)."""
        proc = subprocess.run(["ip", "-j", "link", "show", "dev", name], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            return None
        try:
            links = json.loads(proc.stdout or "[]")
        except ValueError:
            return None
        return links[0] if links else None

    @staticmethod
    def _interface_of(ip: str) -> str | None:
        out = subprocess.run(["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True, check=False).stdout
        for line in out.splitlines():
            fields = line.split()
            if len(fields) > 3 and fields[3].split("/")[0] == ip:
                return fields[1]
        return None

    def _install_routes(self, routes: list[dict]) -> None:
        try:
            installed = json.loads(self.routes_file.read_text())
        except (OSError, ValueError):
            installed = {}
        wanted = {r["dst"]: r["via"] for r in routes}
        for dst, via in installed.items():
            if wanted.get(dst) != via:
                subprocess.run(["ip", "route", "del", dst, "via", via], capture_output=True, check=False)
                self.log("I", "flannel: removed route", dst=dst, via=via)
        current = subprocess.run(["ip", "-o", "route", "show"], capture_output=True, text=True,
                                 check=False).stdout
        for route in routes:
            line = f"{route['dst']} via {route['via']} " + (f"dev {route['dev']} " if route.get("dev") else "")
            if line not in current + " ":
                proc = subprocess.run(route["argv"], capture_output=True, text=True, check=False)
                if proc.returncode != 0:
                    # flannel's routeAdd logs "Error adding route" and goes on
                    self.log("E", "Error adding route", dst=route["dst"], via=route["via"], err=proc.stderr.strip())
                    wanted.pop(route["dst"], None)
                    continue
                self.log("I", "flannel: route", dst=route["dst"], via=route["via"], dev=route.get("dev"))
        self.routes_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.routes_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(wanted, sort_keys=True))
        tmp.replace(self.routes_file)

    # ---- kube-proxy -------------------------------------------------------------------
    def sync_kube_proxy(self) -> None:
        try:
            self.client.request("GET", "/apis/apps/v1/namespaces/kube-system/daemonsets/kube-proxy")
        except ApiError as exc:
            if exc.code == 404:
                return
            raise
        import kube_proxy  # noqa: PLC0415

        cluster_cidr = None
        try:
            cm = self.client.request("GET", "/api/v1/namespaces/kube-system/configmaps/kube-proxy")
            import yaml  # noqa: PLC0415

            conf = yaml.safe_load((cm.get("data") or {}).get("config.conf") or "") or {}
            cluster_cidr = conf.get("clusterCIDR") or None
        except (ApiError, ValueError):
            pass
        try:
            nodeport_ips = kube_proxy.nodeport_ips_for("primary", self.client, self.node_name, self.node_ip)
        except SystemExit as exc:  # the CLI's refusal: no primary IP
            raise RuntimeError(str(exc)) from None
        ruleset = kube_proxy.render_ruleset(
            self.client.list("services"), self.client.list("endpointslices"),
            nodeport_ips=nodeport_ips, cluster_cidr=cluster_cidr)
        if time.monotonic() - self.kube_proxy_full >= KUBE_PROXY_FULL_SYNC:
            self.kube_proxy_last, self.kube_proxy_full = None, time.monotonic()
        if ruleset != self.kube_proxy_last:
            kube_proxy.apply(ruleset, self.nft)
            if self.kube_proxy_last is None:
                self.log("I", "kube-proxy: programmed table ip kube-proxy")
            self.kube_proxy_last = ruleset

    # ---- exec / containerLogs -----------------------------------------------------------
    def serve(self) -> None:
        agent = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt, *args):  # noqa: A002
                pass

            def _send(self, code: int, body: Any, ctype: str = "application/json") -> None:
                data = (json.dumps(body) if ctype == "application/json" else body).encode()
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _target(self, prefix: str):
                url = urllib.parse.urlsplit(self.path)
                parts = [urllib.parse.unquote(x) for x in url.path.split("/") if x]
                if len(parts) != 4 or parts[0] != prefix:
                    self._send(404, {"reason": "NotFound", "message": f"unknown path {url.path}"})
                    return None
                _, namespace, name, container = parts
                rt = agent.runtime
                state = rt._load(rt.key(namespace, name)) if rt is not None else None
                if state is None:
                    self._send(404, {"reason": "NotFound",
                                     "message": f'pod "{name}" in namespace "{namespace}" not found on node '
                                                f'"{agent.node_name}"'})
                    return None
                if state.get("container") != container:
                    self._send(404, {"reason": "NotFound",
                                     "message": f'container "{container}" not found in pod "{name}"'})
                    return None
                return rt, namespace, name, container, urllib.parse.parse_qs(url.query)

            def do_POST(self):  # noqa: N802
                target = self._target("exec")
                if target is None:
                    return
                rt, namespace, name, container, _query = target
                try:
                    length = int(self.headers.get("Content-Length") or 0)
                    body = json.loads(self.rfile.read(length) or b"{}")
                    command = [str(c) for c in body.get("command") or []]
                    timeout = float(body.get("timeout") or 30)
                except (ValueError, TypeError) as exc:
                    self._send(400, {"reason": "BadRequest", "message": str(exc)})
                    return
                try:
                    res = rt.exec(namespace, name, command, timeout=timeout)
                except PodRuntimeError as exc:
                    if exc.reason == "ContainerNotRunning":
                        self._send(409, {"reason": "ContainerNotRunning",
                                         "message": f'container "{container}" in pod "{name}" is not running'})
                    elif exc.reason == "NotFound":
                        self._send(404, {"reason": "NotFound", "message": str(exc)})
                    else:
                        self._send(500, {"reason": "InternalError",
                                         "message": f"error executing command in container: {exc}"})
                    return
                out = {"stdout": res.stdout, "stderr": res.stderr, "exitCode": res.rc}
                if res.timed_out:
                    out["timedOut"] = True
                self._send(200, out)

            def do_GET(self):  # noqa: N802
                target = self._target("containerLogs")
                if target is None:
                    return
                rt, namespace, name, _container, query = target
                tail = None
                if query.get("tailLines"):
                    try:
                        tail = int(query["tailLines"][0])
                    except ValueError:
                        self._send(400, {"reason": "BadRequest", "message": "tailLines must be an integer"})
                        return
                previous = (query.get("previous") or ["false"])[0] == "true"
                try:
                    text = rt.logs(namespace, name, tail, previous=previous)
                except PodRuntimeError as exc:
                    code = 404 if exc.reason == "NotFound" else 400
                    self._send(code, {"reason": exc.reason, "message": str(exc)})
                    return
                self._send(200, text, "text/plain")

        self.server = http.server.ThreadingHTTPServer((self.node_ip, self.port), Handler)
        self.server.daemon_threads = True
        thread = threading.Thread(target=self.server.serve_forever, name="nodeagent-http", daemon=True)
        thread.start()
