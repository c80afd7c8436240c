"""The pod runtime stand-in (molecule/resources/standins/podrt, a TEST DOUBLE).

Unit tests of its pure parts (CRI-O's capability arithmetic, image mapping,
host-gw routes, the Pod status shape), then real pods on two node network
namespaces this test builds (nothing leaves them):

    node1 198.18.0.11 --veth-- node2 198.18.0.12      host-gw routes between them
      cni0 10.244.1.1/24         cni0 10.244.2.1/24
        nginx pod                  busybox (CRI-O defaults), busybox-raw (+NET_RAW)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from fixtures_kapi import STANDINS

sys.path.insert(0, str(STANDINS))
from podrt import caps as capmod  # noqa: E402
from podrt.routes import RouteError, host_gw_routes  # noqa: E402
from podrt.runtime import PodRuntime, PodRuntimeError, image_kind  # noqa: E402
from podrt.status import pod_status  # noqa: E402

NET_RAW_BIT = 13
DEFAULTS = list(capmod.CRIO_DEFAULT_CAPABILITIES)
WITH_NET_RAW = DEFAULTS + ["NET_RAW"]


# ---- pure parts -----------------------------------------------------------------
@pytest.mark.unit
def test_crio_capability_arithmetic():
    assert capmod.CAPABILITIES.index("NET_RAW") == NET_RAW_BIT
    assert "NET_RAW" not in capmod.container_capabilities(DEFAULTS)
    assert capmod.container_capabilities(DEFAULTS, add=["net_raw"])[-1] == "NET_RAW"
    assert "KILL" not in capmod.container_capabilities(DEFAULTS, drop=["CAP_KILL"])
    assert capmod.container_capabilities(DEFAULTS, add=["NET_ADMIN"], drop=["ALL"]) == ["NET_ADMIN"]
    everything = capmod.container_capabilities(DEFAULTS, add=["ALL"], drop=["CHOWN"])
    assert "CHOWN" not in everything and len(everything) == len(capmod.CAPABILITIES) - 1
    with pytest.raises(capmod.CapabilityError, match='unknown capability "CAP_NET_RAWX" to add'):
        capmod.container_capabilities(DEFAULTS, add=["NET_RAWX"])
    assert capmod.mask(["NET_RAW"]) == 1 << NET_RAW_BIT
    assert capmod.setpriv_argv(["CHOWN", "NET_RAW"])[-2] == "--bounding-set=-all,+chown,+net_raw"


@pytest.mark.unit
def test_image_mapping():
    assert image_kind("docker.io/library/nginx:stable-alpine3.17-slim") == "nginx"
    assert image_kind("docker.io/library/nginx@sha256:" + "a" * 64) == "nginx"
    assert image_kind("docker.io/library/busybox") == "busybox"
    assert image_kind("docker.io/library/busybox:1.36") == "busybox"
    for other in ("docker.io/library/nginx-unprivileged:1", "quay.io/library/nginx:1", "nginx", "busybox:1"):
        with pytest.raises(PodRuntimeError) as err:
            image_kind(other)
        assert err.value.reason == "ErrImagePull" and "not available in the offline lab" in str(err.value)


@pytest.mark.unit
def test_host_gw_routes():
    nodes = {"n1": ("10.244.1.0/24", "198.18.0.11"), "n2": ("10.244.2.0/24", "198.18.0.12"),
             "n3": ("10.244.3.0/24", "198.18.0.13")}
    routes = host_gw_routes("n2", nodes, node_cidr="198.18.0.0/24", dev="eth0")
    assert [r["argv"] for r in routes] == [
        ["ip", "route", "replace", "10.244.1.0/24", "via", "198.18.0.11", "dev", "eth0"],
        ["ip", "route", "replace", "10.244.3.0/24", "via", "198.18.0.13", "dev", "eth0"]]
    node_objects = [{"metadata": {"name": n}, "spec": {"podCIDR": c},
                     "status": {"addresses": [{"type": "Hostname", "address": n},
                                              {"type": "InternalIP", "address": ip}]}}
                    for n, (c, ip) in nodes.items()]
    assert [r["dst"] for r in host_gw_routes("n1", node_objects)] == ["10.244.2.0/24", "10.244.3.0/24"]
    with pytest.raises(RouteError, match="not on the node network"):
        host_gw_routes("n1", dict(nodes, n4=("10.244.4.0/24", "192.0.2.4")), node_cidr="198.18.0.0/24")
    with pytest.raises(RouteError, match="given to both"):
        host_gw_routes("n1", dict(nodes, n4=("10.244.1.0/24", "198.18.0.14")))
    with pytest.raises(RouteError, match="has no pod CIDR"):
        host_gw_routes("n9", nodes)
    with pytest.raises(RouteError, match="no spec.podCIDR"):
        host_gw_routes("n1", [{"metadata": {"name": "n1"}, "spec": {}, "status": {}}])


@pytest.mark.unit
def test_pod_status_shape():
    state = {"container": "busybox", "image": "docker.io/library/busybox", "container_id": "ab" * 32,
             "created": "2026-01-01T00:00:00Z", "started": "2026-01-01T00:00:01Z", "ip": "10.244.1.5"}
    running = pod_status(state, running=True, host_ip="198.18.0.11")
    assert running["phase"] == "Running" and running["podIP"] == "10.244.1.5"
    assert running["podIPs"] == [{"ip": "10.244.1.5"}] and running["hostIP"] == "198.18.0.11"
    conds = {c["type"]: c for c in running["conditions"]}
    assert set(conds) == {"PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"}
    assert all(c["status"] == "True" for c in conds.values())
    assert running["containerStatuses"][0]["state"] == {"running": {"startedAt": "2026-01-01T00:00:01Z"}}
    assert running["containerStatuses"][0]["containerID"] == "cri-o://" + "ab" * 32
    failed = pod_status(state, running=False, exit_code=1)
    assert failed["phase"] == "Failed"
    ready = next(c for c in failed["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False" and ready["reason"] == "PodCompleted"
    assert failed["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 1
    assert pod_status(state, running=False, exit_code=0)["phase"] == "Succeeded"


# ---- real pods --------------------------------------------------------------------
def _run(*argv):
    proc = subprocess.run(list(argv), capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {proc.stderr.strip()}")
    return proc.stdout


NODES = {"n1": ("10.244.1.0/24", "198.18.0.11"), "n2": ("10.244.2.0/24", "198.18.0.12")}


def _pod(name, image, command=None, add=()):
    container = {"name": name.split("-")[0], "image": image}
    if command:
        container["command"] = command
    if add:
        container["securityContext"] = {"capabilities": {"add": list(add)}}
    return {"metadata": {"name": name, "namespace": "test", "uid": f"uid-{name}"},
            "spec": {"containers": [container], "terminationGracePeriodSeconds": 1}}


BUSYBOX = "docker.io/library/busybox"
SLEEP = ["/bin/sh", "-c", "sleep inf"]


@pytest.fixture
def lab():
    if os.geteuid() != 0:
        pytest.skip("needs root for network namespaces")
    for tool in ("ip", "bridge", "nginx", "busybox", "setpriv", "nsenter", "unshare"):
        if shutil.which(tool) is None and not os.path.exists(f"/usr/sbin/{tool}"):
            pytest.skip(f"needs {tool} (scripts/setup installs Debian's nginx and busybox)")
    prefix = f"pr{os.getpid() % 100000}"
    ns = {n: f"{prefix}-{n}" for n in NODES}
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    runtimes = {}
    before = set(_run("ip", "netns", "list").split())
    try:
        for name in ns.values():
            _run("ip", "netns", "add", name)
            _run("ip", "-n", name, "link", "set", "lo", "up")
            _run("ip", "netns", "exec", name, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        _run("ip", "-n", ns["n1"], "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", ns["n2"])
        for node, (_cidr, node_ip) in NODES.items():
            _run("ip", "-n", ns[node], "addr", "add", f"{node_ip}/24", "dev", "eth0")
            _run("ip", "-n", ns[node], "link", "set", "eth0", "up")
            for route in host_gw_routes(node, NODES, node_cidr="198.18.0.0/24", dev="eth0"):
                _run("ip", "-n", ns[node], *route["argv"][1:])
            runtimes[node] = PodRuntime(NODES[node][0], workdir / node, node_netns=ns[node], node_ip=NODES[node][1])
        yield ns, runtimes
    finally:
        for node, rt in runtimes.items():
            for key in rt.pods():
                namespace, name = key.split("_", 1)
                rt.delete_pod(namespace, name, grace=0)
        for name in ns.values():
            subprocess.run(["ip", "netns", "delete", name], check=False, capture_output=True)
        shutil.rmtree(workdir, ignore_errors=True)
        left = set(_run("ip", "netns", "list").split()) - before
        assert not [n for n in left if n.startswith(("podrt-", prefix))], left


@pytest.mark.root
@pytest.mark.netns
def test_pods_serve_ping_exec_logs_and_clean_up(lab):
    ns, rt = lab
    nginx = rt["n1"].run_pod(_pod("nginx", "docker.io/library/nginx:stable-alpine3.17-slim"), DEFAULTS)
    plain = rt["n2"].run_pod(_pod("busybox", BUSYBOX, SLEEP), DEFAULTS,
                             resolv_conf="nameserver 10.96.0.10\nsearch test.svc.cluster.local\noptions ndots:5\n")
    raw = rt["n2"].run_pod(_pod("busybox-raw", BUSYBOX, SLEEP), WITH_NET_RAW)
    for status, cidr in ((nginx, "10.244.1."), (plain, "10.244.2."), (raw, "10.244.2.")):
        assert status["phase"] == "Running" and status["podIP"].startswith(cidr), status
        assert {c["type"]: c["status"] for c in status["conditions"]}["Ready"] == "True"
    assert plain["podIP"] != raw["podIP"]
    # capabilities: exactly the set given, read from the pod's PID 1
    assert not (rt["n2"].cap_masks("test", "busybox")["CapEff"] >> NET_RAW_BIT) & 1
    assert (rt["n2"].cap_masks("test", "busybox-raw")["CapEff"] >> NET_RAW_BIT) & 1
    assert capmod.names(rt["n2"].cap_masks("test", "busybox")["CapEff"]) == \
        [c for c in capmod.CAPABILITIES if c in DEFAULTS]
    in_pod = rt["n2"].exec("test", "busybox", ["cat", "/proc/1/status"])
    assert in_pod.rc == 0 and "CapEff:\t00000000000005fb" in in_pod.stdout  # exec'd process: the pod's view
    # nginx answers the welcome page across nodes (host-gw), and logs the request
    page = None
    for _ in range(50):
        res = rt["n2"].exec("test", "busybox", ["wget", "-qO-", f"http://{nginx['podIP']}/"], timeout=10)
        if res.rc == 0:
            page = res.stdout
            break
    assert page is not None and "<title>Welcome to nginx!</title>" in page, res
    # nginx writes the access line in its log phase, after the response went
    # out: wait (bounded) for it rather than racing the worker
    log = ""
    for _ in range(50):
        log = rt["n1"].logs("test", "nginx")
        if f'{plain["podIP"]} - - [' in log:
            break
        time.sleep(0.1)
    assert f'{plain["podIP"]} - - [' in log and '"GET / HTTP/1.1" 200' in log, log
    # ping: with NET_RAW it works, without it busybox says permission denied (not a timeout)
    ok = rt["n2"].exec("test", "busybox-raw", ["ping", "-c", "1", "-W", "3", nginx["podIP"]], timeout=10)
    assert ok.rc == 0 and "1 packets received" in ok.stdout, ok
    denied = rt["n2"].exec("test", "busybox", ["ping", "-c", "1", "-W", "3", nginx["podIP"]], timeout=10)
    assert denied.rc == 1 and "ping: permission denied (are you root?)" in denied.stderr, denied
    # exec: stdout, stderr, exit code; the pod's hostname and resolv.conf
    res = rt["n2"].exec("test", "busybox", ["sh", "-c", "echo out; echo err >&2; hostname; exit 3"])
    assert (res.stdout, res.stderr, res.rc) == ("out\nbusybox\n", "err\n", 3)
    assert "nameserver 10.96.0.10" in rt["n2"].exec("test", "busybox", ["/bin/cat", "/etc/resolv.conf"]).stdout
    # the image's /bin holds busybox applets only: /bin/bash is not there even though the node has it
    with pytest.raises(PodRuntimeError, match='exec: "/bin/bash": executable file not found'):
        rt["n2"].exec("test", "busybox", ["/bin/bash", "-c", "true"])
    with pytest.raises(PodRuntimeError, match='exec: "nosuchprogram": executable file not found'):
        rt["n2"].exec("test", "busybox", ["nosuchprogram"])
    # a stopped pod: Failed, not ready; exec refused
    pod_netns = rt["n2"].get("test", "busybox")["netns"]
    veth = rt["n2"].get("test", "busybox")["veth"]
    rt["n2"].stop_pod("test", "busybox", grace=0.2)
    stopped = rt["n2"].status("test", "busybox")
    assert stopped["phase"] == "Failed" and stopped["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 137
    with pytest.raises(PodRuntimeError, match="is not running"):
        rt["n2"].exec("test", "busybox", ["true"])
    # delete: no namespace, veth, state left
    assert rt["n2"].delete_pod("test", "busybox") is True
    assert pod_netns not in _run("ip", "netns", "list")
    assert veth not in _run("ip", "-n", ns["n2"], "-o", "link", "show")
    assert rt["n2"].pods() == ["test_busybox-raw"]
    assert rt["n2"].delete_pod("test", "busybox") is False
    with pytest.raises(PodRuntimeError, match="not found on this node"):
        rt["n2"].status("test", "busybox")


@pytest.mark.root
@pytest.mark.netns
def test_refusals_leave_nothing_behind(lab):
    ns, rt = lab
    before = set(_run("ip", "netns", "list").split())
    with pytest.raises(PodRuntimeError) as err:
        rt["n1"].run_pod(_pod("web", "quay.io/x/nginx:1"))
    assert err.value.reason == "ErrImagePull"
    with pytest.raises(PodRuntimeError, match='exec: "/bin/bash": executable file not found'):
        rt["n1"].run_pod(_pod("bb", BUSYBOX, ["/bin/bash", "-c", "true"]))
    with pytest.raises(PodRuntimeError, match='unknown capability "CAP_NOPE" to add'):
        rt["n1"].run_pod(_pod("bb", BUSYBOX, SLEEP, add=["NOPE"]))
    assert rt["n1"].pods() == []
    assert not [n for n in _run("ip", "netns", "list").split() if n.startswith("podrt-")
                and n not in before]
    assert "veth" not in _run("ip", "-n", ns["n1"], "-o", "link", "show")
    rt["n1"].run_pod(_pod("bb", BUSYBOX, SLEEP))
    with pytest.raises(PodRuntimeError, match="already runs on this node"):
        rt["n1"].run_pod(_pod("bb", BUSYBOX, SLEEP))
    # host-local IPAM: a full range is refused, a freed address is handed out again
    small = PodRuntime("10.244.9.0/30", rt["n2"].state_dir / "small", node_netns=ns["n2"])
    try:
        assert small.run_pod(_pod("one", BUSYBOX, SLEEP))["podIP"] == "10.244.9.2"
        with pytest.raises(PodRuntimeError, match=r"no IP addresses available in range set: 10.244.9.0/30"):
            small.run_pod(_pod("two", BUSYBOX, SLEEP))
        assert small.pods() == ["test_one"]
        small.delete_pod("test", "one", grace=0)
        assert small.run_pod(_pod("two", BUSYBOX, SLEEP))["podIP"] == "10.244.9.2"
    finally:
        for key in small.pods():
            small.delete_pod(*key.split("_", 1), grace=0)


@pytest.mark.root
@pytest.mark.netns
def test_cli_run_exec_logs_delete(lab):
    ns, rt = lab
    base = [sys.executable, "-m", "podrt", "--state-dir", str(rt["n1"].state_dir), "--pod-cidr", NODES["n1"][0],
            "--node-netns", ns["n1"]]
    env = dict(os.environ, PYTHONPATH=str(STANDINS))
    pod_file = rt["n1"].state_dir / "pod.json"
    import json  # noqa: PLC0415
    pod_file.write_text(json.dumps(_pod("bb", BUSYBOX, ["/bin/sh", "-c", "echo hello; sleep inf"])))

    def cli(*args):
        return subprocess.run([*base, *args], capture_output=True, text=True, env=env, timeout=60, check=False)

    run = cli("run", str(pod_file), "--caps", ",".join(DEFAULTS))
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["phase"] == "Running"
    assert cli("list").stdout == "test/bb\n"
    res = cli("exec", "test", "bb", "--", "sh", "-c", "echo hi; exit 4")
    assert (res.stdout, res.returncode) == ("hi\n", 4)
    assert cli("logs", "test", "bb").stdout == "hello\n"
    assert cli("delete", "test", "bb", "--grace", "0").returncode == 0
    gone = cli("status", "test", "bb")
    assert gone.returncode == 1 and "NotFound: pod test/bb not found on this node" in gone.stderr
    routes = rt["n1"].state_dir / "nodes.json"
    routes.write_text(json.dumps({k: list(v) for k, v in NODES.items()}))
    assert cli("routes", "n1", str(routes)).stdout == "ip route replace 10.244.2.0/24 via 198.18.0.12\n"
