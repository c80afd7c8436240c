"""A real Kubernetes-like data plane built in network namespaces.

The verification checks of kubelab (``module_utils/kubelab_checks.py``) are
run against this data plane by ``tests/integration/test_dataplane*.py`` and by
``bench/verify_matrix.py``. Only two things differ from a cluster run:

* how a command reaches the busybox "pod": ``ip netns exec`` (plus
  ``unshare --pid`` so the pod has its own PID 1, and ``setpriv`` to drop
  CAP_NET_RAW) instead of the Kubernetes API exec;
* where the object list comes from: :meth:`DataPlane.targets` returns the
  same structure that ``targets_from_objects`` builds from the API objects.

Topology (every address lives only inside namespaces this fixture creates)::

    ctl 198.18.0.100 --+                      (the Ansible controller)
    n1  198.18.0.11  --+-- br0 (in ns "sw")   (node 1, host-gw to 10.244.2/24)
    n2  198.18.0.12  --+                      (node 2, host-gw to 10.244.1/24)
      n1: pa 10.244.1.10 (nginx), bb 10.244.1.11 (busybox)
      n2: pb 10.244.2.10 (nginx), dns 10.244.2.53 (dnsmasq as "CoreDNS")

Every node has a kube-proxy-style nftables ruleset: DNAT with ``numgen
random`` for each ClusterIP, externalIP (the node addresses) and NodePort,
masquerade for traffic that entered from outside, and ``reject`` for a
service port with no endpoints. nginx (one foreground master per pod
namespace, own config and access log in the docker image's ``main`` format)
and dnsmasq run in the foreground under this process's ``Popen`` handles.

Every node also has firewalld 0.9's forward chain (EL8's firewalld; see
:func:`firewalld_forward_ruleset`): what no zone accepts is rejected with
``icmpx admin-prohibited``. Its ``trusted`` zone holds, by default, what the
node_prep role binds to it (``node_prep_firewalld_trusted_sources`` and
``..._interfaces`` read from roles/node_prep/defaults/main.yml, templated
with the kubelab role's defaults); ``DataPlane(trusted_sources=[],
trusted_interfaces=[])`` is a node where the role did not do that.

Faults (``faults=``) that the checks must catch: ``dead_endpoint`` (no nginx
in pod pb), ``one_pod_selected`` (the Services select only pa),
``wrong_body`` (pb serves another page), ``wrong_body_all`` (both do),
``nxdomain`` (the DNS server lacks the nginx-svc names), ``closed_port``
(nginx-svc-np has no endpoints: kube-proxy rejects). Dropping CAP_NET_RAW is
a property of the executor: ``pod_executor(net_raw=False)``.
"""

from __future__ import annotations

import ctypes
import itertools
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest
import yaml

from ansible.module_utils.kubelab_checks import ExecResult, FileLogSource

REPO = Path(__file__).resolve().parent.parent

FAULTS = frozenset({
    "dead_endpoint", "one_pod_selected", "wrong_body", "wrong_body_all",
    "nxdomain", "closed_port",
})

NODE_NET = "198.18.0"
CTL_IP = f"{NODE_NET}.100"
HOST_IP = f"{NODE_NET}.200"  # only with attach_host()
NODES = {"n1": f"{NODE_NET}.11", "n2": f"{NODE_NET}.12"}
NODE_SUBNET = {"n1": "10.244.1", "n2": "10.244.2"}
PODS = {
    # key: (node, ip, pod name, role)
    "pa": ("n1", "10.244.1.10", "nginx-6c8cf466cd-mpfz4", "nginx"),
    "pb": ("n2", "10.244.2.10", "nginx-6c8cf466cd-xgbd7", "nginx"),
    "bb": ("n1", "10.244.1.11", "busybox-9ff887cc8-f5m46", "busybox"),
    "dns": ("n2", "10.244.2.53", "coredns-5d78c9869d-4x2kq", "dns"),
}
CLUSTER_DNS_IP = "10.96.0.10"
# An address that silently drops everything (blackhole route on node 2): the
# way to provoke real timeouts, as opposed to refusals.
SILENT_IP = "10.244.2.99"
NAMESPACE = "test"
DOMAIN = "cluster.local"
# (name, type, cluster ip, port, node port)
SERVICES = [
    ("nginx-svc", "ClusterIP", "10.105.132.127", 80, None),
    ("nginx-svc-lb", "LoadBalancer", "10.110.214.153", 8080, 31558),
    ("nginx-svc-np", "NodePort", "10.97.16.76", 8081, 31511),
]
WELCOME = """<!DOCTYPE html>
<html>
<head>
<title>Welcome to nginx!</title>
</head>
<body>
<h1>Welcome to nginx!</h1>
<p>If you see this page, the nginx web server is successfully installed and
working.</p>
</body>
</html>
"""
OTHER_PAGE = "<html><body><h1>It works, but this is not nginx's page</h1></body></html>\n"
NGINX_LOG_FORMAT = (
    "'$remote_addr - $remote_user [$time_local] \"$request\" '\n"
    "                      '$status $body_bytes_sent \"$http_referer\" '\n"
    "                      '\"$http_user_agent\" \"$http_x_forwarded_for\"'"
)

_counter = itertools.count()
CLONE_NEWNET = 0x40000000
DROP_NET_RAW = ["setpriv", "--bounding-set", "-net_raw", "--inh-caps", "-net_raw",
                "--ambient-caps", "-net_raw", "--"]


def role_trusted_zone():
    """(sources, interfaces) the node_prep role binds to firewalld's trusted zone by default.

    Read from the role's defaults and templated as a play would, with the
    kubelab role's defaults (kubelab_pod_network_cidr): the data plane gets
    whatever the role ships, not an answer written here.
    """
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar, trust_as_template

    variables = {}
    for path in (REPO / "roles" / "kubelab" / "defaults" / "main.yml",
                 REPO / "roles" / "node_prep" / "defaults" / "main.yml"):
        for key, value in (yaml.safe_load(path.read_text()) or {}).items():
            variables[key] = trust_as_template(value) if isinstance(value, str) else value
    templar = Templar(loader=DataLoader(), variables=variables)

    def get(name):
        if name not in variables:
            return []
        return list(templar.template(trust_as_template("{{ %s }}" % name)))

    return get("node_prep_firewalld_trusted_sources"), get("node_prep_firewalld_trusted_interfaces")


def firewalld_forward_ruleset(trusted_sources, trusted_interfaces, table="kubelab_firewalld"):
    """nftables ruleset of firewalld 0.9's forward path with a trusted zone (target ACCEPT).

    Modelled on firewalld v0.9.11 src/firewall/core/nftables.py (table inet
    firewalld, chain filter_FORWARD at priority filter + 10): established/
    related accept, ``ct status dnat`` accept, ``iifname "lo"`` accept, the
    zone dispatch (FORWARD_IN by input interface or source address,
    FORWARD_OUT by output interface or destination address; only the trusted
    zone's ACCEPT target accepts anything: the default zone's target adds no
    rule and 0.9 has no intra-zone forwarding), ``ct state invalid`` drop,
    and last ``reject with icmpx admin-prohibited``.
    """
    v4 = [s for s in trusted_sources if ":" not in s]
    v6 = [s for s in trusted_sources if ":" in s]

    def elements(items, quote=False):
        if not items:
            return ""
        return " elements = { %s };" % ", ".join(f'"{i}"' if quote else i for i in items)

    return "\n".join([
        f"add table inet {table}",
        f"table inet {table} {{",
        f"  set trusted_src4 {{ type ipv4_addr; flags interval;{elements(v4)} }}",
        f"  set trusted_src6 {{ type ipv6_addr; flags interval;{elements(v6)} }}",
        f"  set trusted_ifaces {{ type ifname;{elements(trusted_interfaces, quote=True)} }}",
        "  chain filter_FORWARD {",
        "    type filter hook forward priority filter + 10; policy accept;",
        "    ct state established,related accept",
        "    ct status dnat accept",
        '    iifname "lo" accept',
        "    iifname @trusted_ifaces accept",
        "    ip saddr @trusted_src4 accept",
        "    ip6 saddr @trusted_src6 accept",
        "    oifname @trusted_ifaces accept",
        "    ip daddr @trusted_src4 accept",
        "    ip6 daddr @trusted_src6 accept",
        "    ct state invalid drop",
        "    reject with icmpx type admin-prohibited",
        "  }",
        "}",
    ]) + "\n"


def _run(*argv, check=True, input_text=None):
    proc = subprocess.run(list(argv), input=input_text, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


def netns_list():
    """Names of the network namespaces known to iproute2."""
    out = _run("ip", "netns", "list").stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def _setns(name):
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
    finally:
        os.close(fd)


def run_in_netns(name, func, *args, **kwargs):
    """Run ``func`` in a fresh thread that has joined netns ``name``.

    setns(2) on a network namespace changes only the calling thread; threads
    that thread starts (the probes' bounded pools) inherit it. The calling
    thread and the rest of the test process stay in their own namespace.
    """
    box = {}

    def target():
        try:
            _setns(name)
            box["value"] = func(*args, **kwargs)
        except BaseException as exc:  # re-raised in the caller
            box["error"] = exc

    thread = threading.Thread(target=target, name=f"netns-{name}")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box.get("value")


class NetnsExecutor:
    """Executor (same interface as the Kubernetes API one) into a "pod".

    The pod is a process ``sleep`` that is PID 1 of its own PID and mount
    namespaces inside the pod's network namespace (like the busybox
    Deployment's ``sleep inf``); a command enters it with ``nsenter``, as
    ``kubectl exec`` enters a container. Its "image" is busybox: PATH holds
    only busybox applets, so ``sh``, ``ping``, ``telnet``, ``nslookup`` and
    ``timeout`` are busybox's. Without NET_RAW the pod's PID 1 and every
    command entering it lose CAP_NET_RAW from the bounding, inheritable and
    ambient sets (CRI-O gives exec'd processes the container's capabilities).
    """

    def __init__(self, pid1, applet_dir, net_raw=True):
        self.pid1 = pid1
        self.applet_dir = applet_dir
        self.net_raw = net_raw
        self.description = f"nsenter -t {pid1}"

    def run(self, argv, timeout):
        cmd = [_which("nsenter"), "-t", str(self.pid1), "-p", "-m", "-n", "--"]
        if not self.net_raw:
            cmd += [_which(DROP_NET_RAW[0]), *DROP_NET_RAW[1:]]
        cmd += list(argv)
        env = {"PATH": self.applet_dir, "HOME": "/", "LANG": "C"}
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env,
                                  stdin=subprocess.DEVNULL, check=False)
        except subprocess.TimeoutExpired as exc:
            return ExecResult(stdout=_text(exc.stdout), stderr=_text(exc.stderr), rc=None,
                              error=f"no exit status within {timeout}s", timed_out=True)
        return ExecResult(stdout=proc.stdout, stderr=proc.stderr, rc=proc.returncode)


def _which(tool):
    path = shutil.which(tool)
    if path is None:
        raise RuntimeError(f"{tool} not found")
    return path


def _text(value):
    if value is None:
        return ""
    return value.decode(errors="replace") if isinstance(value, bytes) else value


class DataPlane:
    """Build, describe and tear down the namespace data plane."""

    def __init__(self, faults=(), trusted_sources=None, trusted_interfaces=None):
        unknown = set(faults) - FAULTS
        if unknown:
            raise ValueError(f"unknown faults: {sorted(unknown)}")
        self.faults = frozenset(faults)
        role_sources, role_interfaces = role_trusted_zone()
        # firewalld's trusted zone on every node: the role's defaults unless given
        self.trusted_sources = list(role_sources if trusted_sources is None else trusted_sources)
        self.trusted_interfaces = list(role_interfaces if trusted_interfaces is None else trusted_interfaces)
        self.prefix = f"kv{os.getpid() % 100000}x{next(_counter)}"
        self.ns = {key: f"{self.prefix}-{key}" for key in ["sw", "ctl", *NODES, *PODS]}
        self.created_ns = []
        self.procs = []
        self._pod_procs = {}
        self._pod_pids = {}
        self.workdir = None
        self.applet_dir = None
        self.netns_etc = None
        self.host_link = None
        self.setup_seconds = None
        self.teardown_seconds = None

    # ---- construction -------------------------------------------------
    def up(self):
        start = time.monotonic()
        try:
            self._build()
        except BaseException:
            self.down()
            raise
        self.setup_seconds = time.monotonic() - start
        return self

    def _ip(self, ns, *args):
        return _run("ip", "-n", self.ns[ns], *args)

    def _exec(self, ns, *args):
        return _run("ip", "netns", "exec", self.ns[ns], *args)

    def _build(self):
        self.workdir = Path(tempfile.mkdtemp(prefix=f"{self.prefix}-"))
        os.chmod(self.workdir, 0o755)
        self.applet_dir = str(self.workdir / "bin")
        os.mkdir(self.applet_dir)
        _run("busybox", "--install", "-s", self.applet_dir)
        for key, name in self.ns.items():
            _run("ip", "netns", "add", name)
            self.created_ns.append(name)
            self._ip(key, "link", "set", "lo", "up")
        # the node network: a bridge in "sw"
        self._ip("sw", "link", "add", "br0", "type", "bridge")
        self._ip("sw", "link", "set", "br0", "up")
        for key, addr in [("ctl", CTL_IP), *NODES.items()]:
            self._ip("sw", "link", "add", f"to-{key}", "type", "veth", "peer", "name", "eth0",
                     "netns", self.ns[key])
            self._ip("sw", "link", "set", f"to-{key}", "master", "br0", "up")
            self._ip(key, "addr", "add", f"{addr}/24", "dev", "eth0")
            self._ip(key, "link", "set", "eth0", "up")
        for node in NODES:
            self._exec(node, "sysctl", "-qw", "net.ipv4.ip_forward=1")
            other = "n2" if node == "n1" else "n1"
            self._ip(node, "route", "add", f"{NODE_SUBNET[other]}.0/24", "via", NODES[other])
            # a default route, as real nodes have: traffic to a service port
            # without endpoints then reaches kube-proxy's reject rules
            self._ip(node, "route", "add", "default", "via", CTL_IP)
        # pods: /32 address, point-to-point veth to the node (routed, no bridge)
        for key, (node, ip, _name, _role) in PODS.items():
            self._ip(node, "link", "add", f"v-{key}", "type", "veth", "peer", "name", "eth0",
                     "netns", self.ns[key])
            self._ip(node, "addr", "add", f"{NODE_SUBNET[node]}.1/32", "dev", f"v-{key}")
            self._ip(node, "link", "set", f"v-{key}", "up")
            self._ip(node, "route", "add", f"{ip}/32", "dev", f"v-{key}")
            self._ip(key, "addr", "add", f"{ip}/32", "dev", "eth0")
            self._ip(key, "link", "set", "eth0", "up")
            self._ip(key, "route", "add", f"{NODE_SUBNET[node]}.1", "dev", "eth0")
            self._ip(key, "route", "add", "default", "via", f"{NODE_SUBNET[node]}.1", "dev", "eth0")
        self._ip("n2", "route", "add", "blackhole", f"{SILENT_IP}/32")
        for node in NODES:
            _run("ip", "netns", "exec", self.ns[node], "nft", "-f", "-", input_text=self._ruleset(node))
            _run("ip", "netns", "exec", self.ns[node], "nft", "-f", "-",
                 input_text=firewalld_forward_ruleset(self.trusted_sources, self.trusted_interfaces))
        self._write_resolv_conf()
        self._start_dns()
        for key in ("pa", "pb"):
            if key == "pb" and "dead_endpoint" in self.faults:
                continue
            self._start_nginx(key)
        for net_raw in (True, False):
            self._start_pod(net_raw)
        self._wait_ready()

    def _endpoints(self, service):
        """Pod keys the Service's endpoints point at (what kube-proxy programs)."""
        if service == "nginx-svc-np" and "closed_port" in self.faults:
            return []
        if "one_pod_selected" in self.faults:
            return ["pa"]
        return ["pa", "pb"]

    def _ruleset(self, node):
        lines = [
            f"add table ip {self._table}",
            f"table ip {self._table} {{",
            "  chain prerouting { type nat hook prerouting priority -100; policy accept; jump services; }",
            "  chain output { type nat hook output priority -100; policy accept; jump services; }",
            "  chain postrouting { type nat hook postrouting priority 100; policy accept;"
            " meta mark & 0x4000 == 0x4000 masquerade; }",
            "  chain filter_in { type filter hook input priority filter; policy accept; jump no_endpoints; }",
            "  chain filter_fwd { type filter hook forward priority filter; policy accept; jump no_endpoints; }",
            "  chain filter_out { type filter hook output priority filter; policy accept; jump no_endpoints; }",
            "  chain mark_masq { meta mark set meta mark | 0x4000; }",
        ]
        services = []
        no_endpoints = []
        seps = []
        node_addrs = ", ".join(NODES.values())
        dns_sep = f"dnat to {PODS['dns'][1]}"
        services.append(f"    ip daddr {CLUSTER_DNS_IP} udp dport 53 {dns_sep}:53")
        services.append(f"    ip daddr {CLUSTER_DNS_IP} tcp dport 53 {dns_sep}:53")
        for name, _type, cip, port, node_port in SERVICES:
            chain = "svc_" + name.replace("-", "_")
            eps = self._endpoints(name)
            if not eps:
                no_endpoints.append(f"    ip daddr {{ {cip}, {node_addrs} }} tcp dport {port} reject with tcp reset")
                if node_port:
                    no_endpoints.append(f"    fib daddr type local tcp dport {node_port} reject with tcp reset")
                continue
            vmap = ", ".join(f"{i} : jump sep_{name.replace('-', '_')}_{k}" for i, k in enumerate(eps))
            seps.append(f"  chain {chain} {{ numgen random mod {len(eps)} vmap {{ {vmap} }}; }}")
            for key in eps:
                seps.append(f"  chain sep_{name.replace('-', '_')}_{key} {{ meta l4proto tcp dnat to {PODS[key][1]}:80; }}")
            services.append(f"    ip daddr {cip} tcp dport {port} jump {chain}")
            services.append(f"    ip daddr {{ {node_addrs} }} tcp dport {port} jump mark_masq")
            services.append(f"    ip daddr {{ {node_addrs} }} tcp dport {port} jump {chain}")
            if node_port:
                services.append(f"    fib daddr type local tcp dport {node_port} jump mark_masq")
                services.append(f"    fib daddr type local tcp dport {node_port} jump {chain}")
        lines.append("  chain services {")
        lines += services
        lines.append("  }")
        lines.append("  chain no_endpoints {")
        lines += no_endpoints
        lines.append("  }")
        lines += seps
        lines.append("}")
        return "\n".join(lines) + "\n"

    _table = "kubelab_proxy"

    def _write_resolv_conf(self):
        self.netns_etc = Path("/etc/netns") / self.ns["bb"]
        self.netns_etc.mkdir(parents=True)
        (self.netns_etc / "resolv.conf").write_text(
            f"search {NAMESPACE}.svc.{DOMAIN} svc.{DOMAIN} {DOMAIN}\n"
            f"nameserver {CLUSTER_DNS_IP}\noptions ndots:5\n")

    def _spawn(self, ns, argv, log_name):
        log = open(self.workdir / log_name, "wb")  # noqa: SIM115 - closed in down()
        proc = subprocess.Popen(["ip", "netns", "exec", self.ns[ns], *argv], stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.procs.append((proc, log))
        return proc

    def _start_dns(self):
        records = [f"--host-record=kube-dns.kube-system.svc.{DOMAIN},{CLUSTER_DNS_IP}"]
        for name, _type, cip, _port, _np in SERVICES:
            if name == "nginx-svc" and "nxdomain" in self.faults:
                continue
            records.append(f"--host-record={name}.{NAMESPACE}.svc.{DOMAIN},{cip}")
        self._spawn("dns", ["dnsmasq", "--keep-in-foreground", "--no-resolv", "--no-hosts",
                            "--bind-interfaces", f"--listen-address={PODS['dns'][1]}",
                            "--except-interface=lo", "--pid-file=", "--user=root", "--group=root",
                            f"--local=/{DOMAIN}/", "--conf-file=/dev/null", *records], "dnsmasq.log")

    def _start_pod(self, net_raw):
        """The busybox pod's PID 1 (``sleep``), in new PID + mount namespaces."""
        argv = [_which("unshare"), "--pid", "--fork", "--kill-child", "--mount-proc"]
        if not net_raw:
            argv += [_which(DROP_NET_RAW[0]), *DROP_NET_RAW[1:]]
        argv += [_which("busybox"), "sleep", "1000000"]
        proc = self._spawn("bb", argv, f"pod-{net_raw}.out")
        self._pod_procs[net_raw] = proc

    def _pod_pid1(self, net_raw):
        """Host PID of the pod's PID 1 (the child that unshare forked)."""
        proc = self._pod_procs[net_raw]
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
        pids = children.read_text().split() if children.exists() else []
        return int(pids[0]) if pids else None

    def _start_nginx(self, key):
        root = self.workdir / key
        (root / "html").mkdir(parents=True)
        (root / "tmp").mkdir()
        page = WELCOME
        if "wrong_body_all" in self.faults or (key == "pb" and "wrong_body" in self.faults):
            page = OTHER_PAGE
        (root / "html" / "index.html").write_text(page)
        conf = root / "nginx.conf"
        conf.write_text(f"""daemon off;
master_process on;
worker_processes 1;
user root;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 256; }}
http {{
    log_format main {NGINX_LOG_FORMAT};
    access_log {root}/access.log main;
    client_body_temp_path {root}/tmp/body;
    proxy_temp_path {root}/tmp/proxy;
    fastcgi_temp_path {root}/tmp/fastcgi;
    uwsgi_temp_path {root}/tmp/uwsgi;
    scgi_temp_path {root}/tmp/scgi;
    default_type text/html;
    server {{
        listen 80;
        root {root}/html;
        index index.html;
    }}
}}
""")
        self._spawn(key, ["nginx", "-c", str(conf), "-e", str(root / "error.log")], f"nginx-{key}.out")

    def _wait_ready(self, timeout=5.0):
        deadline = time.monotonic() + timeout
        pending = {k: 80 for k in ("pa", "pb") if not (k == "pb" and "dead_endpoint" in self.faults)}
        pending["dns"] = 53
        while pending:
            for key, port in list(pending.items()):
                if key == "pods":
                    continue
                out = self._exec(key, "ss", "-Hltn", f"sport = :{port}").stdout
                if out.strip():
                    del pending[key]
            for proc, _log in self.procs:
                if proc.poll() is not None:
                    raise RuntimeError(f"daemon {proc.args} exited {proc.returncode}")
            for net_raw in self._pod_procs:
                if net_raw not in self._pod_pids:
                    pid = self._pod_pid1(net_raw)
                    # ready once the forked child has exec'd busybox
                    if pid and "busybox" in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"):
                        self._pod_pids[net_raw] = pid
            if len(self._pod_pids) < len(self._pod_procs):
                pending["pods"] = 0
            else:
                pending.pop("pods", None)
            if pending and time.monotonic() > deadline:
                raise RuntimeError(f"not listening after {timeout}s: {sorted(pending)}")
            if pending:
                time.sleep(0.01)

    def attach_host(self, address=HOST_IP):
        """Give the test process's own (root) namespace a leg on the node network.

        For running ansible-playbook and the modules unchanged from the host.
        down() deletes the host side (and with it the pair) and asserts that
        it is gone.
        """
        self.host_link = f"{self.prefix}h"
        _run("ip", "link", "add", self.host_link, "type", "veth", "peer", "name", "to-host", "netns", self.ns["sw"])
        self._ip("sw", "link", "set", "to-host", "master", "br0", "up")
        _run("ip", "addr", "add", f"{address}/24", "dev", self.host_link)
        _run("ip", "link", "set", self.host_link, "up")
        return address

    # ---- teardown -----------------------------------------------------
    def down(self):
        start = time.monotonic()
        errors = []
        pods = set(id(p) for p in self._pod_procs.values())
        for proc, _log in self.procs:
            if proc.poll() is None:
                # unshare --fork ignores SIGTERM while it waits; SIGKILL makes
                # it go and --kill-child takes the pod's PID 1 with it
                if id(proc) in pods:
                    proc.kill()
                else:
                    proc.terminate()
        for proc, log in self.procs:
            try:
                proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()
        self.procs = []
        if self.host_link is not None:
            # the host side first: a deleted namespace is destroyed asynchronously
            _run("ip", "link", "delete", self.host_link, check=False)
        for name in reversed(self.created_ns):
            res = _run("ip", "netns", "delete", name, check=False)
            if res.returncode != 0:
                errors.append(res.stderr.strip())
        self.created_ns = []
        if self.netns_etc is not None and self.netns_etc.exists():
            shutil.rmtree(self.netns_etc)
        if self.netns_etc is not None:
            try:  # /etc/netns itself, when this left it empty
                self.netns_etc.parent.rmdir()
            except OSError:
                pass
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
        if self.host_link is not None and _run("ip", "link", "show", self.host_link, check=False).returncode == 0:
            errors.append(f"host link {self.host_link} was left behind")
        self.teardown_seconds = time.monotonic() - start
        left = [n for n in netns_list() if n.startswith(self.prefix + "-")]
        if left or errors:
            raise RuntimeError(f"data plane teardown left {left}: {errors}")

    # ---- what the checks get -----------------------------------------
    def pod_executor(self, net_raw=True):
        return NetnsExecutor(self._pod_pids[net_raw], self.applet_dir, net_raw=net_raw)

    def log_source(self):
        """Pod name -> its nginx access log (the API's pod log in a cluster)."""
        paths = {PODS[k][2]: self.workdir / k / "access.log" for k in ("pa", "pb")}
        return FileLogSource(paths)

    def controller(self, func, *args, **kwargs):
        """Run ``func`` from the controller namespace (outside the cluster)."""
        return run_in_netns(self.ns["ctl"], func, *args, **kwargs)

    def targets(self, crio_capabilities=None):
        """The discovered-targets structure, as targets_from_objects returns it."""
        if crio_capabilities is None:
            crio_capabilities = ["CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "SETGID", "SETUID",
                                 "SETPCAP", "NET_BIND_SERVICE", "KILL", "NET_RAW"]
        node_names = {"n1": "worker01", "n2": "worker02"}
        pods = []
        for key, (node, ip, name, role) in PODS.items():
            namespace = "kube-system" if role == "dns" else NAMESPACE
            pods.append({"name": name, "namespace": namespace, "ip": ip, "node": node_names[node],
                         "ready": True, "host_network": False, "labels": {"app": role}})
        nginx_pods = [PODS[k][2] for k in ("pa", "pb")]
        services = []
        for name, stype, cip, port, node_port in SERVICES:
            eps = [{"ip": PODS[k][1], "pod": PODS[k][2], "node": node_names[PODS[k][0]], "ready": True}
                   for k in self._endpoints(name)]
            services.append({
                "name": name, "namespace": NAMESPACE, "type": stype, "cluster_ip": cip,
                "external_ips": list(NODES.values()),
                "ports": [{"name": "http", "port": port, "protocol": "TCP", "node_port": node_port,
                           "target_port": 80}],
                "endpoints": eps, "backends": nginx_pods,
            })
        return {
            "namespace": NAMESPACE,
            "cluster_domain": DOMAIN,
            "cluster_dns": {"name": "kube-dns", "namespace": "kube-system", "cluster_ip": CLUSTER_DNS_IP,
                            "ports": [{"name": "dns", "port": 53, "protocol": "UDP"},
                                      {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]},
            "nodes": [{"name": node_names[k], "addresses": [addr],
                       "crio_default_capabilities": list(crio_capabilities)} for k, addr in NODES.items()],
            "services": services,
            "pods": pods,
            "probe_pod": {"name": PODS["bb"][2], "namespace": NAMESPACE, "container": "busybox",
                          "node": node_names["n1"]},
        }


def _require_root():
    if os.geteuid() != 0:
        pytest.skip("needs root for network namespaces")
    for tool in ("ip", "nft", "nginx", "dnsmasq", "busybox", "setpriv", "unshare"):
        if shutil.which(tool) is None:
            pytest.skip(f"needs {tool}")


@pytest.fixture
def dataplane_factory():
    """Build data planes with chosen faults; all are torn down at the end."""
    _require_root()
    built = []

    def build(*faults, **options):
        plane = DataPlane(faults, **options).up()
        built.append(plane)
        return plane

    yield build
    errors = []
    for plane in built:
        try:
            plane.down()
        except RuntimeError as exc:
            errors.append(str(exc))
    assert not errors, errors


@pytest.fixture
def dataplane(dataplane_factory):
    """A healthy data plane."""
    return dataplane_factory()
