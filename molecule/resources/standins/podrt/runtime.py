"""Start, inspect, exec into and delete "pods" made of real processes (TEST DOUBLE).

See CONTRACT.md for what is modelled and the upstream files each behaviour comes from.
"""

from __future__ import annotations

import datetime
import fcntl
import hashlib
import ipaddress
import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import caps as capmod

NGINX_REPO = "docker.io/library/nginx"
BUSYBOX_REPO = "docker.io/library/busybox"
COREDNS_REPO = "registry.k8s.io/coredns/coredns"
# the DNS double the coredns image is mapped to (../dns/kube_dns.py)
KUBE_DNS = Path(__file__).resolve().parent.parent / "dns" / "kube_dns.py"
BRIDGE = "cni0"  # flannel's CNI config delegates to the bridge plugin with this name
NGINX_HTML = "/usr/share/nginx/html"

NGINX_CONF = """\
# per-pod nginx configuration written by the podrt TEST DOUBLE
daemon off;
master_process on;
user www-data;
worker_processes 1;
pid {dir}/nginx.pid;
error_log /dev/stderr notice;
events {{ worker_connections 256; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    log_format main '$remote_addr - $remote_user [$time_local] "$request" '
                    '$status $body_bytes_sent "$http_referer" '
                    '"$http_user_agent" "$http_x_forwarded_for"';
    access_log /dev/stdout main;
    client_body_temp_path {dir}/tmp/body;
    proxy_temp_path {dir}/tmp/proxy;
    fastcgi_temp_path {dir}/tmp/fastcgi;
    uwsgi_temp_path {dir}/tmp/uwsgi;
    scgi_temp_path {dir}/tmp/scgi;
    server {{
        listen 80;
        server_name localhost;
        location / {{
            root {html};
            index index.html index.htm;
        }}
    }}
}}
"""

# The pod's processes. The monitor (conmon's part: it waits for the container
# and writes its exit status to a file, so that a kubelet started later still
# learns it) runs in the pod's mount/UTS namespaces but outside its PID
# namespace; its one child is PID 1 of the pod: it mounts the pod's /proc,
# binds the pod's resolv.conf, sets the hostname (the pod's name, as the
# kubelet asks the runtime), then becomes the container's process with the
# container's capabilities. A signal death is reported as 128+N, as runc does.
# Once PID 1 is gone its PID namespace takes no new process: the monitor
# forks nothing after it (builtins only).
MONITOR = ('exitfile=$1; shift; ( set -e; "$1" -t proc proc /proc; "$1" --bind "$3" /etc/resolv.conf; '
           '"$2" "$4"; shift 4; exec "$@" ) & wait $!; rc=$?; echo $rc > "$exitfile"; exit $rc')


def _tool(name: str) -> str:
    """Absolute path of a host tool (the container's PATH is the image's, not the node's)."""
    for directory in ("/usr/sbin", "/usr/bin", "/sbin", "/bin"):
        path = os.path.join(directory, name)
        if os.access(path, os.X_OK):
            return path
    found = shutil.which(name)
    if found is None:
        raise PodRuntimeError(f"{name} not found on this node", reason="CreatePodSandboxError")
    return found


class PodRuntimeError(RuntimeError):
    """A refusal or failure, with the message the kubelet would put in the container's waiting state."""

    def __init__(self, message: str, reason: str = "CreateContainerError"):
        super().__init__(message)
        self.reason = reason


@dataclass
class ExecResult:
    stdout: str
    stderr: str
    rc: int | None
    timed_out: bool = False


def _run(*argv: str, check: bool = True, input_text: str | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(list(argv), capture_output=True, text=True, input=input_text, check=False)
    if check and proc.returncode != 0:
        raise PodRuntimeError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()}",
                              reason="CreatePodSandboxError")
    return proc


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def image_kind(image: str) -> str:
    """``nginx`` or ``busybox`` for the two images the lab maps to local programs, else ErrImagePull."""
    ref = str(image or "")
    repo = ref.split("@", 1)[0]
    name, _, tag = repo.rpartition(":") if ":" in repo.rsplit("/", 1)[-1] else (repo, "", "")
    for kind, wanted in (("nginx", NGINX_REPO), ("busybox", BUSYBOX_REPO), ("coredns", COREDNS_REPO)):
        if name == wanted:
            return kind
    raise PodRuntimeError(
        f"image {ref!r} is not available in the offline lab (podrt maps only {NGINX_REPO}:*, "
        f"{BUSYBOX_REPO}:* and {COREDNS_REPO}:* to local programs)", reason="ErrImagePull")


class PodRuntime:
    """Pods of one node. ``node_netns``: the node's network namespace name (None: this one)."""

    def __init__(self, pod_cidr: str, state_dir: str | os.PathLike = "/run/kubelab-podrt",
                 node_netns: str | None = None, node_name: str = "", node_ip: str = "",
                 bridge: str = BRIDGE, dns_kubeconfig: str | None = None,
                 launcher: list[str] | tuple[str, ...] = ()):
        self.pod_cidr = ipaddress.ip_network(pod_cidr)
        if self.pod_cidr.prefixlen > 30:
            raise PodRuntimeError(f"pod CIDR {pod_cidr} is too small", reason="InvalidPodCIDR")
        self.gateway = next(self.pod_cidr.hosts())
        self.state_dir = Path(state_dir)
        self.node_netns = node_netns
        self.node_name = node_name
        self.node_ip = node_ip
        self.bridge = bridge
        # coredns pods: the kubeconfig the DNS double reads Services with (the agent gives the node's)
        self.dns_kubeconfig = dns_kubeconfig
        # prefix of every pod's command line (the node agent: systemd-run --scope, so that the pods
        # are not in the kubelet unit's cgroup, as CRI-O's conmon scopes are not)
        self.launcher = list(launcher)
        self.procs: dict[str, subprocess.Popen] = {}
        self.state_dir.mkdir(parents=True, exist_ok=True)
        (self.state_dir / "pods").mkdir(exist_ok=True)

    # ---- helpers ---------------------------------------------------------
    def _node_ip(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        prefix = ["ip", "-n", self.node_netns] if self.node_netns else ["ip"]
        return _run(*prefix, *args, check=check)

    @staticmethod
    def key(namespace: str, name: str) -> str:
        return f"{namespace}_{name}"

    def _digest(self, key: str) -> str:
        return hashlib.sha256(f"{self.state_dir.resolve()}/{key}".encode()).hexdigest()[:10]

    def _dir(self, key: str) -> Path:
        return self.state_dir / "pods" / key

    def _load(self, key: str) -> dict[str, Any] | None:
        path = self._dir(key) / "pod.json"
        if not path.exists():
            return None
        return json.loads(path.read_text(encoding="utf-8"))

    def _save(self, key: str, state: dict[str, Any]) -> None:
        path = self._dir(key) / "pod.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=1, sort_keys=True), encoding="utf-8")
        tmp.replace(path)

    def pods(self) -> list[str]:
        return sorted(p.name for p in (self.state_dir / "pods").iterdir() if (p / "pod.json").exists())

    def _allocate_ip(self, key: str) -> ipaddress.IPv4Address:
        """host-local IPAM: the next free address after the last one handed out, .1 is the gateway."""
        used = set()
        for other in self.pods():
            state = self._load(other)
            if state and state.get("ip"):
                used.add(ipaddress.ip_address(state["ip"]))
        last_file = self.state_dir / "last_reserved_ip"
        hosts = [h for h in self.pod_cidr.hosts() if h != self.gateway]
        start = 0
        if last_file.exists():
            try:
                start = hosts.index(ipaddress.ip_address(last_file.read_text().strip())) + 1
            except ValueError:
                start = 0
        for offset in range(len(hosts)):
            candidate = hosts[(start + offset) % len(hosts)]
            if candidate not in used:
                last_file.write_text(str(candidate))
                return candidate
        raise PodRuntimeError(f"no IP addresses available in range set: {self.pod_cidr}",
                              reason="CreatePodSandboxError")

    def _ensure_bridge(self) -> None:
        link = self._node_ip("link", "show", self.bridge, check=False)
        if link.returncode != 0:
            self._node_ip("link", "add", self.bridge, "type", "bridge")
        addr = f"{self.gateway}/{self.pod_cidr.prefixlen}"
        if addr not in self._node_ip("-o", "addr", "show", "dev", self.bridge).stdout:
            self._node_ip("addr", "add", addr, "dev", self.bridge)
        self._node_ip("link", "set", self.bridge, "up")

    # ---- pods ------------------------------------------------------------
    def run_pod(self, pod: dict[str, Any], capabilities: list[str] | None = None,
                resolv_conf: str | None = None) -> dict[str, Any]:
        """Start ``pod`` (a Pod object with one container). ``capabilities``: CRI-O's
        effective default_capabilities at this moment (default: CRI-O's built-in list)."""
        meta = pod.get("metadata") or {}
        spec = pod.get("spec") or {}
        namespace, name = meta.get("namespace") or "default", meta.get("name")
        if not name:
            raise PodRuntimeError("pod has no metadata.name", reason="InvalidPod")
        containers = spec.get("containers") or []
        if len(containers) != 1:
            raise PodRuntimeError(f"pod {namespace}/{name}: podrt runs exactly one container, "
                                  f"got {len(containers)}", reason="CreateContainerConfigError")
        container = containers[0]
        key = self.key(namespace, name)
        if self._load(key):
            raise PodRuntimeError(f"pod {namespace}/{name} already runs on this node", reason="AlreadyExists")
        kind = image_kind(container.get("image"))
        sc_caps = ((container.get("securityContext") or {}).get("capabilities") or {})
        default_caps = capmod.CRIO_DEFAULT_CAPABILITIES if capabilities is None else capabilities
        try:
            cont_caps = capmod.container_capabilities(default_caps, sc_caps.get("add") or (),
                                                      sc_caps.get("drop") or ())
        except capmod.CapabilityError as exc:
            raise PodRuntimeError(str(exc)) from None
        workdir = self._dir(key)
        workdir.mkdir(parents=True)
        os.chmod(workdir, 0o755)
        digest = self._digest(key)
        state: dict[str, Any] = {
            "namespace": namespace, "name": name, "uid": meta.get("uid", ""), "container": container.get("name"),
            "image": container.get("image"), "kind": kind, "capabilities": cont_caps,
            "netns": f"podrt-{digest}", "veth": f"veth{digest[:8]}", "ip": None, "pid": None, "init_pid": None,
            "container_id": hashlib.sha256(f"{digest}/{time.time_ns()}".encode()).hexdigest(),
            "created": _now(), "started": None, "grace": int(spec.get("terminationGracePeriodSeconds", 30)),
            "spec_container": container, "restart_count": 0, "last_state": None,
        }
        self._save(key, state)
        try:
            self._sandbox(key, state)
            argv, env = self._command(key, state, container)
            resolv = workdir / "resolv.conf"
            resolv.write_text(resolv_conf if resolv_conf is not None else Path("/etc/resolv.conf").read_text())
            self._start(key, state, argv, env, str(resolv), name)
        except BaseException:
            self.delete_pod(namespace, name, grace=0)
            raise
        return self.status(namespace, name)

    def _sandbox(self, key: str, state: dict[str, Any]) -> None:
        """Network namespace + veth on the node's bridge (the CNI bridge plugin as flannel configures it)."""
        self._ensure_bridge()
        with open(self.state_dir / "ipam.lock", "w", encoding="ascii") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # host-local IPAM holds a lock on its store too
            state["ip"] = str(self._allocate_ip(key))
            self._save(key, state)
        netns, veth = state["netns"], state["veth"]
        _run("ip", "netns", "add", netns)
        _run("ip", "-n", netns, "link", "set", "lo", "up")
        self._node_ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", netns)
        self._node_ip("link", "set", veth, "master", self.bridge)
        # hairpinMode true (flannel's CNI config): a pod reaches itself through a Service
        _run(*(["bridge", "-n", self.node_netns] if self.node_netns else ["bridge"]),
             "link", "set", "dev", veth, "hairpin", "on")
        self._node_ip("link", "set", veth, "up")
        _run("ip", "-n", netns, "addr", "add", f"{state['ip']}/{self.pod_cidr.prefixlen}", "dev", "eth0")
        _run("ip", "-n", netns, "link", "set", "eth0", "up")
        _run("ip", "-n", netns, "route", "add", "default", "via", str(self.gateway), "dev", "eth0")

    def _command(self, key: str, state: dict[str, Any], container: dict[str, Any]) -> tuple[list[str], dict]:
        workdir = self._dir(key)
        env = {"HOSTNAME": state["name"], "HOME": "/root"}
        for item in container.get("env") or []:
            if "value" in item:
                env[item["name"]] = str(item["value"])
        command = list(container.get("command") or [])
        args = list(container.get("args") or [])
        if state["kind"] == "nginx":
            env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
            for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
                (workdir / "tmp" / sub).mkdir(parents=True, exist_ok=True)
            conf = workdir / "nginx.conf"
            conf.write_text(NGINX_CONF.format(dir=workdir, html=NGINX_HTML))
            state["nginx_conf"] = str(conf)
            if not command and not args:  # the image's CMD: nginx -g "daemon off;"
                return ["/usr/sbin/nginx", "-c", str(conf)], env
            argv = command + args
            if argv and os.path.basename(argv[0]) == "nginx":
                argv = ["/usr/sbin/nginx", "-c", str(conf), *argv[1:]]
            return argv, env
        if state["kind"] == "coredns":
            return self._coredns_command(env)
        applets = workdir / "bin"
        applets.mkdir(exist_ok=True)
        _run("busybox", "--install", "-s", str(applets))
        state["applets"] = str(applets)
        env["PATH"] = str(applets)
        argv = command + args if (command or args) else ["sh"]  # the image's CMD is ["sh"]
        return [self._busybox_path(state, argv[0]), *argv[1:]], env

    def _coredns_command(self, env: dict) -> tuple[list[str], dict]:
        """The image's CoreDNS (its -conf Corefile is not read): the DNS double on :53 UDP+TCP."""
        import sys  # noqa: PLC0415

        if not self.dns_kubeconfig:
            raise PodRuntimeError("the coredns image needs a kubeconfig for the DNS double (none given)",
                                  reason="CreateContainerConfigError")
        paths = [p for p in sys.path if p and os.path.isdir(os.path.join(p, "yaml"))]
        env["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        if paths:
            env["PYTHONPATH"] = paths[0]  # PyYAML for kclient (the kubelet's vendored copy on a node)
        env["PYTHONUNBUFFERED"] = "1"
        return [sys.executable, str(KUBE_DNS), "--kubeconfig", self.dns_kubeconfig,
                "--listen", "0.0.0.0:53"], env

    def _busybox_path(self, state: dict[str, Any], program: str) -> str:
        applet = Path(state["applets"]) / os.path.basename(program)
        if not applet.exists():
            raise PodRuntimeError(f'exec: "{program}": executable file not found in $PATH',
                                  reason="StartError")
        return str(applet)

    def _start(self, key, state, argv, env, resolv, hostname) -> None:
        workdir = self._dir(key)
        log = open(workdir / "container.log", "ab")  # noqa: SIM115 - handed to the child
        exit_file = workdir / "exit_code"
        exit_file.unlink(missing_ok=True)
        cmd = [*self.launcher, _tool("ip"), "netns", "exec", state["netns"], _tool("unshare"), "--pid", "--mount",
               "--uts", "--propagation", "private", "--", "/bin/sh", "-c", MONITOR, "podrt-monitor",
               str(exit_file), _tool("mount"), _tool("hostname"), resolv, hostname,
               *capmod.setpriv_argv(state["capabilities"], _tool("setpriv")), *argv]
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env,
                                    start_new_session=True, cwd="/")
        finally:
            log.close()
        self.procs[key] = proc
        state["pid"] = proc.pid
        state["init_pid"] = None
        state.pop("exit_code", None)
        # the container's process is the monitor's child: PID 1 of the pod's PID namespace
        # (with a launcher prefix such as systemd-run --scope the monitor is still proc.pid: they exec)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and proc.poll() is None:
            children = _children(proc.pid)
            if children and _exe_is_not_init(children[0]):
                state["init_pid"] = children[0]
                break
            time.sleep(0.01)
        state["started"] = _now()
        self._save(key, state)

    def restart_container(self, namespace: str, name: str, capabilities: list[str] | None = None) -> dict[str, Any]:
        """Start the pod's (exited) container again in the same sandbox (network namespace, address),
        as the kubelet does for restartPolicy Always/OnFailure: a new container (new ID) created with
        CRI-O's effective default_capabilities at this moment; restartCount + 1; the exited one becomes
        lastState; its log is kept as the previous log (kubectl logs --previous)."""
        key = self.key(namespace, name)
        state = self.get(namespace, name)
        if self._alive(state):
            raise PodRuntimeError(f"container {state['container']} is still running", reason="AlreadyRunning")
        container = state.get("spec_container") or {}
        sc_caps = ((container.get("securityContext") or {}).get("capabilities") or {})
        default_caps = capmod.CRIO_DEFAULT_CAPABILITIES if capabilities is None else capabilities
        try:
            state["capabilities"] = capmod.container_capabilities(default_caps, sc_caps.get("add") or (),
                                                                  sc_caps.get("drop") or ())
        except capmod.CapabilityError as exc:
            raise PodRuntimeError(str(exc)) from None
        code = self._exit_code(state)
        code = 137 if code is None else code  # the monitor gone too (a node reboot): as killed
        state["last_state"] = {"terminated": {
            "exitCode": code, "reason": "Completed" if code == 0 else "Error",
            "startedAt": state.get("started"), "finishedAt": state.get("stopped") or _now(),
            "containerID": f"cri-o://{state['container_id']}"}}
        # leftovers of the old container (an exec'd process) go, as the old container's cgroup does
        for other in _run("ip", "netns", "pids", state["netns"], check=False).stdout.split():
            _signal(int(other), signal.SIGKILL)
        old = self.procs.pop(key, None)
        if old is not None:
            try:
                old.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        state["restart_count"] = int(state.get("restart_count") or 0) + 1
        state["container_id"] = hashlib.sha256(f"{self._digest(key)}/{time.time_ns()}".encode()).hexdigest()
        state["stopped"] = None
        workdir = self._dir(key)
        if (workdir / "container.log").exists():
            (workdir / "container.log").replace(workdir / "previous.log")
        self._save(key, state)
        argv, env = self._command(key, state, container)
        self._start(key, state, argv, env, str(workdir / "resolv.conf"), name)
        return self.status(namespace, name)

    def _alive(self, state: dict[str, Any]) -> bool:
        proc = self.procs.get(self.key(state["namespace"], state["name"]))
        if proc is not None:
            return proc.poll() is None
        pid = state.get("init_pid") or state.get("pid")
        return bool(pid) and Path(f"/proc/{pid}").exists()

    def _exit_code(self, state: dict[str, Any]) -> int | None:
        proc = self.procs.get(self.key(state["namespace"], state["name"]))
        if state.get("exit_code") is not None and not self._alive(state):
            return state["exit_code"]
        if not self._alive(state):
            # the monitor's exit file (what conmon writes for CRI-O): known after a kubelet restart too
            deadline = time.monotonic() + 1
            path = self._dir(self.key(state["namespace"], state["name"])) / "exit_code"
            while True:
                try:
                    return int(path.read_text().strip())
                except (OSError, ValueError):
                    pass
                if time.monotonic() > deadline or (proc is not None and proc.poll() is not None):
                    break
                time.sleep(0.02)
        if proc is None or proc.poll() is None:
            return None
        code = proc.returncode
        return 128 - code if code < 0 else code  # killed by a signal: 128+N as runc reports

    def get(self, namespace: str, name: str) -> dict[str, Any]:
        state = self._load(self.key(namespace, name))
        if state is None:
            raise PodRuntimeError(f"pod {namespace}/{name} not found on this node", reason="NotFound")
        return state

    def cap_masks(self, namespace: str, name: str) -> dict[str, int]:
        """Cap* masks of the pod's PID 1 (what `cat /proc/1/status` in the pod shows)."""
        state = self.get(namespace, name)
        return capmod.read_cap_masks(state["init_pid"])

    def status(self, namespace: str, name: str) -> dict[str, Any]:
        from .status import pod_status  # noqa: PLC0415

        state = self.get(namespace, name)
        return pod_status(state, running=self._alive(state), exit_code=self._exit_code(state),
                          host_ip=self.node_ip)

    def logs(self, namespace: str, name: str, tail_lines: int | None = None, previous: bool = False) -> str:
        if self._load(self.key(namespace, name)) is None:
            raise PodRuntimeError(f"pod {namespace}/{name} not found on this node", reason="NotFound")
        path = self._dir(self.key(namespace, name)) / ("previous.log" if previous else "container.log")
        if previous and not path.exists():
            raise PodRuntimeError(f'previous terminated container "{self.get(namespace, name)["container"]}" '
                                  f'in pod "{name}" not found', reason="BadRequest")
        text = path.read_text(errors="replace") if path.exists() else ""
        if tail_lines is not None:
            lines = text.splitlines(keepends=True)
            text = "".join(lines[-tail_lines:]) if tail_lines > 0 else ""
        return text

    def exec(self, namespace: str, name: str, argv: list[str], timeout: float = 30.0,
             stdin: str | None = None) -> ExecResult:
        """Run ``argv`` inside the pod (its network, mount, PID and UTS namespaces) with the
        container's capabilities, as `crictl exec` / `kubectl exec` do."""
        state = self.get(namespace, name)
        if not self._alive(state) or not state.get("init_pid"):
            raise PodRuntimeError(f"container {state['container']} is not running", reason="ContainerNotRunning")
        if not argv:
            raise PodRuntimeError("exec: no command given", reason="InvalidArgument")
        env = {"HOSTNAME": state["name"], "HOME": "/root",
               "PATH": state.get("applets") or "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
        program = argv[0]
        if state["kind"] == "busybox":  # the image holds busybox applets only, /bin/cat included
            program = self._busybox_path(state, program)
        cmd = [_tool("nsenter"), "-t", str(state["init_pid"]), "-n", "-m", "-p", "-u", "--",
               *capmod.setpriv_argv(state["capabilities"], _tool("setpriv")), program, *argv[1:]]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd="/",
                                  input=stdin, stdin=None if stdin is not None else subprocess.DEVNULL,
                                  check=False)
        except subprocess.TimeoutExpired as exc:
            return ExecResult(_text(exc.stdout), _text(exc.stderr), None, timed_out=True)
        return ExecResult(proc.stdout, proc.stderr, proc.returncode)

    def stop_pod(self, namespace: str, name: str, grace: float | None = None) -> None:
        """SIGTERM to the pod's PID 1, SIGKILL after the grace period (the whole PID namespace dies with it)."""
        state = self._load(self.key(namespace, name))
        if state is None:
            return
        grace = state.get("grace", 30) if grace is None else grace
        pid = state.get("init_pid")
        if pid and self._alive(state):
            _signal(pid, signal.SIGTERM)
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline and _running(pid):
                time.sleep(0.05)
            if _running(pid):
                # still there after the grace period: SIGKILL, exit code 137 as runc reports
                # (unshare, which waits for it, does not pass a signal death on)
                state["exit_code"] = 128 + signal.SIGKILL
                _signal(pid, signal.SIGKILL)
        # the monitor writes the exit status once PID 1 is gone: give it a moment before the sweep
        exit_file = self._dir(self.key(namespace, name)) / "exit_code"
        deadline = time.monotonic() + 1
        while pid and not exit_file.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        # anything still in the pod's network namespace (an exec'd process, a dead init's leftovers)
        if state.get("netns"):
            for other in _run("ip", "netns", "pids", state["netns"], check=False).stdout.split():
                _signal(int(other), signal.SIGKILL)
        proc = self.procs.get(self.key(namespace, name))
        if proc is not None:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        state["stopped"] = _now()
        self._save(self.key(namespace, name), state)

    def delete_pod(self, namespace: str, name: str, grace: float | None = None) -> bool:
        """Stop the pod and remove its namespace, veth, address and files. False when it was not there."""
        key = self.key(namespace, name)
        state = self._load(key)
        if state is None:
            return False
        self.stop_pod(namespace, name, grace)
        if state.get("netns"):
            _run("ip", "netns", "delete", state["netns"], check=False)
        if state.get("veth"):  # gone with the namespace's eth0; only a failed setup leaves it
            self._node_ip("link", "delete", state["veth"], check=False)
        self.procs.pop(key, None)
        shutil.rmtree(self._dir(key), ignore_errors=True)
        return True


def _children(pid: int) -> list[int]:
    try:
        return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except (OSError, ValueError):
        return []


def _exe_is_not_init(pid: int) -> bool:
    """True once the pod's PID 1 has exec'd past the shell wrapper and setpriv into the program."""
    try:
        exe = os.path.realpath(os.readlink(f"/proc/{pid}/exe"))
    except OSError:
        return False
    wrappers = {os.path.realpath(shutil.which(t) or t) for t in ("sh", "setpriv", "unshare")}
    return exe not in wrappers


def _running(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] != "Z"


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _text(value) -> str:
    if value is None:
        return ""
    return value.decode(errors="replace") if isinstance(value, bytes) else value
