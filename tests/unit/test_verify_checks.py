"""Unit tests of module_utils/kubelab_checks.py (no root, no cluster)."""

from __future__ import annotations

import json
import random
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ansible.module_utils import kubelab_checks as c

pytestmark = pytest.mark.unit
CAPTURES = Path(__file__).resolve().parent.parent / "data" / "captures"
FQDN = "nginx-svc.test.svc.cluster.local"


def cap(name):
    return json.loads((CAPTURES / f"{name}.json").read_text())


def as_exec(name):
    d = cap(name)
    return c.ExecResult(d["stdout"], d["stderr"], d["rc"], None, False)


# --------------------------------------------------------------------- retry
def test_retry_only_transient_outcomes():
    seq = iter([(c.TIMEOUT, "t"), (c.TRANSPORT, "x"), (c.OK, "fine")])
    sleeps = []
    assert c.retrying(lambda: next(seq), 5, 0.5, sleep=sleeps.append) == (c.OK, "fine", 3)
    assert sleeps == [0.5, 0.5]
    calls = []

    def wrong():
        calls.append(1)
        return "nxdomain", "no such name"

    assert c.retrying(wrong, 5, 0, sleep=lambda s: None) == ("nxdomain", "no such name", 1)
    assert len(calls) == 1
    always = c.retrying(lambda: (c.TIMEOUT, "t"), 3, 0, sleep=lambda s: None)
    assert always == (c.TIMEOUT, "t", 3)


# --------------------------------------------------------- exec over the API
class FakeWS:
    """Mimics kubernetes.stream.ws_client.WSClient (channels 1, 2 and the status)."""

    def __init__(self, chunks, rc, hang=False, broken=False):
        self.chunks = list(chunks)  # [(channel, text)]
        self.rc = rc
        self.hang = hang
        self.broken = broken
        self.out = []
        self.err = []
        self.closed = False

    def is_open(self):
        return self.hang or bool(self.chunks)

    def update(self, timeout=0):
        if self.broken:
            raise OSError("connection reset by peer")
        if self.chunks:
            ch, text = self.chunks.pop(0)
            (self.out if ch == 1 else self.err).append(text)

    def peek_stdout(self):
        return bool(self.out)

    def read_stdout(self):
        text, self.out = "".join(self.out), []
        return text

    def peek_stderr(self):
        return bool(self.err)

    def read_stderr(self):
        text, self.err = "".join(self.err), []
        return text

    @property
    def returncode(self):
        return None if self.is_open() else self.rc

    def close(self):
        self.closed = True


class FakeCore:
    def connect_get_namespaced_pod_exec(self, *a, **k):  # only passed as a reference
        raise AssertionError("must go through stream()")


def executor_with(ws, calls=None):
    def stream(method, name, namespace, **kwargs):
        if calls is not None:
            calls.append((method, name, namespace, kwargs))
        if isinstance(ws, Exception):
            raise ws
        return ws
    return c.KubeExecExecutor(FakeCore(), "test", "busybox-1", "busybox", stream_func=stream)


def test_kube_exec_separates_stdout_stderr_and_exit_code():
    d = cap("ping_permission_denied")
    ws = FakeWS([(1, d["stdout"]), (2, d["stderr"])], rc=1)
    calls = []
    res = executor_with(ws, calls).run(["ping", "-c", "1", "10.244.2.14"], 5)
    assert res == c.ExecResult(d["stdout"], d["stderr"], 1, None, False)
    assert ws.closed
    _method, name, ns, kwargs = calls[0]
    assert (name, ns) == ("busybox-1", "test")
    assert kwargs["command"] == ["ping", "-c", "1", "10.244.2.14"]
    assert kwargs["stdout"] and kwargs["stderr"] and not kwargs["stdin"] and not kwargs["tty"]
    assert kwargs["container"] == "busybox" and kwargs["_preload_content"] is False


def test_kube_exec_timeout_and_transport_errors():
    res = executor_with(FakeWS([(1, "PING\n")], rc=None, hang=True)).run(["ping", "x"], 0.3)
    assert res.timed_out and res.rc is None and res.stdout == "PING\n"
    res = executor_with(OSError("handshake failed")).run(["true"], 1)
    assert res.error.startswith("exec failed") and not res.timed_out
    res = executor_with(FakeWS([(1, "a")], rc=0, broken=True)).run(["true"], 1)
    assert "broke" in res.error


# ----------------------------------------------- in-pod checks, replayed outputs
class ReplayExecutor:
    """Answers each command with a captured output (busybox 1.35, real)."""

    def __init__(self, table):
        self.table = table
        self.calls = []

    def run(self, argv, timeout):
        self.calls.append(list(argv))
        key = " ".join(argv)
        for prefix, answer in self.table.items():
            if key.startswith(prefix):
                value = answer.pop(0) if isinstance(answer, list) else answer
                return value
        raise AssertionError("unexpected command " + key)


def lab_targets():
    return {
        "namespace": "test", "cluster_domain": "cluster.local",
        "cluster_dns": {"name": "kube-dns", "namespace": "kube-system", "cluster_ip": "10.96.0.10",
                        "ports": [{"name": "dns-tcp", "port": 53, "protocol": "TCP"}]},
        "nodes": [{"name": "worker01", "addresses": ["10.20.2.235"]}],
        "services": [{"name": "nginx-svc", "namespace": "test", "type": "ClusterIP", "cluster_ip": "10.105.132.127",
                      "external_ips": [], "ports": [{"name": "http", "port": 80, "protocol": "TCP", "node_port": None}],
                      "endpoints": [], "backends": []}],
        "pods": [{"name": "nginx-a", "namespace": "test", "ip": "10.244.2.10", "node": "worker02",
                  "host_network": False},
                 {"name": "busybox-1", "namespace": "test", "ip": "10.244.1.16", "node": "worker01",
                  "host_network": False}],
        "probe_pod": {"name": "busybox-1", "namespace": "test", "container": "busybox", "node": "worker01"},
    }


def test_pod_probe_healthy_from_captures():
    ex = ReplayExecutor({
        "ping": as_exec("ping_ok"), "sh -c timeout 5 telnet nginx-svc 80": as_exec("telnet_ok"),
        "sh -c timeout 5 telnet kube-dns.kube-system 53": as_exec("telnet_dns_ok"),
        "nslookup nginx-svc.test": as_exec("nslookup_fqdn_ok"), "nslookup nginx-svc": as_exec("nslookup_short_ok"),
    })
    results = {r["id"]: r for r in c.PodProbe(ex, lab_targets(), workers=1).run()}
    assert sorted(results) == ["dns:nginx-svc", "dns:" + FQDN, "ping:nginx-a", "tcp:kube-dns.kube-system:53",
                               "tcp:nginx-svc:80"]
    assert all(r["verdict"] == "pass" for r in results.values()), results
    # the probe pod does not ping itself; nobody pings a ClusterIP
    pinged = [argv[-1] for argv in ex.calls if argv[0] == "ping"]
    assert pinged == ["10.244.2.10"]
    assert results["dns:nginx-svc"]["exit_code"] == 1


def test_pod_probe_permission_denied_reads_capeff_and_names_crio_setting():
    ex = ReplayExecutor({"ping": as_exec("ping_permission_denied"), "cat /proc/1/status": as_exec("status_no_net_raw")})
    probe = c.PodProbe(ex, lab_targets(), node_crio_capabilities={
        "worker01.example.com": ["CHOWN", "KILL"]}, sleep=lambda s: None)
    r = probe.ping(lab_targets()["pods"][0])
    assert r["verdict"] == "fail" and r["reason"] == "permission_denied" and r["attempts"] == 1
    assert r["details"]["net_raw"] is False and r["details"]["cap_eff"] == "000001fffeffdfff"
    assert "CRI-O effective default_capabilities on worker01: CHOWN,KILL (NET_RAW ABSENT)" in r["observed"]
    assert ["cat", "/proc/1/status"] in ex.calls


def test_pod_probe_timeouts_retry_definite_answers_do_not():
    ex = ReplayExecutor({"ping": as_exec("ping_timeout"), "sh -c timeout 5 telnet nginx-svc 80": as_exec("telnet_refused"),
                         "nslookup": [as_exec("nslookup_timeout"), as_exec("nslookup_fqdn_ok")]})
    probe = c.PodProbe(ex, lab_targets(), attempts=3, sleep=lambda s: None)
    r = probe.ping(lab_targets()["pods"][0])
    assert (r["verdict"], r["reason"], r["attempts"]) == ("fail", "timeout", 3)
    r = probe.tcp("nginx-svc", 80)
    assert (r["verdict"], r["reason"], r["attempts"]) == ("fail", "refused", 1)
    r = probe.dns(FQDN, FQDN, "10.105.132.127")
    assert (r["verdict"], r["attempts"]) == ("pass", 2)


def test_pod_probe_nxdomain_not_retried():
    ex = ReplayExecutor({"nslookup": as_exec("nslookup_fqdn_nxdomain")})
    r = c.PodProbe(ex, lab_targets(), attempts=3, sleep=lambda s: None).dns(FQDN, FQDN, "10.105.132.127")
    assert (r["verdict"], r["reason"], r["attempts"]) == ("fail", "nxdomain", 1)


# ------------------------------------------------------- targets from objects
def svc(name, stype, cip, port, node_port=None, selector=None):
    p = {"name": "http", "port": port, "protocol": "TCP", "targetPort": 80}
    if node_port:
        p["nodePort"] = node_port
    return {"metadata": {"name": name, "namespace": "test"},
            "spec": {"type": stype, "clusterIP": cip, "selector": selector or {"app": "nginx"},
                     "externalIPs": ["10.20.2.235", "10.20.2.236"], "ports": [p]}}


def pod(name, ip, node, labels, ready=True):
    return {"metadata": {"name": name, "namespace": "test", "labels": labels},
            "spec": {"nodeName": node, "containers": [{"name": labels.get("app", "c")}]},
            "status": {"phase": "Running", "podIP": ip,
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def slice_for(service, pods):
    return {"metadata": {"name": service + "-abc", "labels": {"kubernetes.io/service-name": service}},
            "endpoints": [{"addresses": [p["status"]["podIP"]], "conditions": {"ready": True},
                           "nodeName": p["spec"]["nodeName"], "targetRef": {"kind": "Pod", "name": p["metadata"]["name"]}}
                          for p in pods]}


def write_up_objects(one_pod=False):
    a = pod("nginx-6c8cf466cd-mpfz4", "10.244.1.15", "worker01", {"app": "nginx", "pod-template-hash": "6c8cf466cd"})
    b = pod("nginx-6c8cf466cd-xgbd7", "10.244.2.14", "worker02", {"app": "nginx", "pod-template-hash": "6c8cf466cd"})
    bb = pod("busybox-9ff887cc8-f5m46", "10.244.1.16", "worker01", {"app": "busybox"})
    services = [svc("nginx-svc", "ClusterIP", "10.105.132.127", 80),
                svc("nginx-svc-lb", "LoadBalancer", "10.110.214.153", 8080, 31558),
                svc("nginx-svc-np", "NodePort", "10.97.16.76", 8081, 31511)]
    if one_pod:
        services[0]["spec"]["selector"] = {"app": "nginx", "statefulset.kubernetes.io/pod-name": "x"}
    slices = [slice_for(s["metadata"]["name"], [a] if one_pod and i == 0 else [a, b]) for i, s in enumerate(services)]
    nodes = [{"metadata": {"name": n}, "status": {"addresses": [{"type": "InternalIP", "address": ip},
                                                                {"type": "Hostname", "address": n}]}}
             for n, ip in (("master", "10.20.2.234"), ("worker01", "10.20.2.235"), ("worker02", "10.20.2.236"))]
    deps = [{"metadata": {"name": "nginx"}, "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "nginx"}}},
             "status": {"readyReplicas": 2}},
            {"metadata": {"name": "busybox"}, "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "busybox"}}},
             "status": {"readyReplicas": 1}}]
    dns = {"metadata": {"name": "kube-dns", "namespace": "kube-system"},
           "spec": {"clusterIP": "10.96.0.10", "ports": [{"name": "dns", "port": 53, "protocol": "UDP"},
                                                         {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]}}
    return dict(services=services, pods=[a, b, bb], nodes=nodes, deployments=deps, endpoint_slices=slices,
                dns_service=dns)


def test_targets_from_the_write_up_objects_give_its_curl_matrix():
    t = c.targets_from_objects("test", probe_selector={"app": "busybox"}, **write_up_objects())
    urls = sorted("%s:%s" % (x["host"], x["port"]) for x in c.http_targets(t))
    # the write-up's curls: 2 externalIPs x {80, 8080, 8081} and 3 nodes x {31558, 31511}
    expected = sorted(["10.20.2.235:80", "10.20.2.236:80", "10.20.2.235:8080", "10.20.2.236:8080",
                       "10.20.2.235:8081", "10.20.2.236:8081"]
                      + ["%s:%s" % (ip, p) for ip in ("10.20.2.234", "10.20.2.235", "10.20.2.236")
                         for p in (31558, 31511)])
    assert urls == expected
    assert t["cluster_dns"]["cluster_ip"] == "10.96.0.10"
    assert t["probe_pod"] == {"name": "busybox-9ff887cc8-f5m46", "namespace": "test", "container": "busybox",
                              "node": "worker01"}
    assert t["services"][0]["backends"] == ["nginx-6c8cf466cd-mpfz4", "nginx-6c8cf466cd-xgbd7"]


def test_a_service_selecting_one_pod_still_expects_the_whole_deployment():
    t = c.targets_from_objects("test", **write_up_objects(one_pod=True))
    s = t["services"][0]
    assert [e["pod"] for e in s["endpoints"]] == ["nginx-6c8cf466cd-mpfz4"]
    assert s["backends"] == ["nginx-6c8cf466cd-mpfz4", "nginx-6c8cf466cd-xgbd7"]


def test_not_ready_names_what_is_missing():
    objs = write_up_objects()
    objs["deployments"][0]["status"]["readyReplicas"] = 1
    objs["endpoint_slices"][2]["endpoints"] = []
    t = c.targets_from_objects("test", probe_selector={"app": "busybox"}, **objs)
    assert c.not_ready(objs, t, True) == ["deployment nginx: 1/2 ready", "service nginx-svc-np: no ready endpoint"]
    t["probe_pod"] = None
    assert "probe pod: none ready" in c.not_ready(objs, t, True)


def test_endpoints_fallback_shape():
    eps = [{"metadata": {"name": "nginx-svc"}, "subsets": [{
        "addresses": [{"ip": "10.244.1.15", "nodeName": "worker01", "targetRef": {"name": "a"}}],
        "notReadyAddresses": [{"ip": "10.244.2.14", "targetRef": {"name": "b"}}]}]}]
    objs = write_up_objects()
    objs["endpoint_slices"] = c._endpoints_as_slices(eps)
    t = c.targets_from_objects("test", **objs)
    assert t["services"][0]["endpoints"] == [{"ip": "10.244.1.15", "pod": "a", "node": "worker01", "ready": True},
                                             {"ip": "10.244.2.14", "pod": "b", "node": None, "ready": False}]


# ------------------------------------------------------------- spread numbers
def test_binomial_tail_exact():
    assert c.binomial_cdf_below(10, 0.5, 1) == pytest.approx(1 / 1024)
    assert c.binomial_cdf_below(4, 0.5, 5) == pytest.approx(1.0)


def test_spread_plan_defaults_meet_the_budget():
    n, threshold, prob = c.spread_plan(2, 0.4, 1e-6 / 3)
    assert (n, threshold) == (65, 13)
    assert prob <= 1e-6 / 3
    # one request fewer would not meet the budget (it is the smallest N)
    assert 2 * c.binomial_cdf_below(64, 0.5, 13) > 1e-6 / 3
    n3, t3, p3 = c.spread_plan(3, 0.4, 1e-6 / 3)
    assert p3 <= 1e-6 / 3 and t3 == pytest.approx(0.4 * n3 / 3, abs=1)


def test_spread_plan_fair_split_passes_in_simulation():
    rng = random.Random(7)
    n, threshold, _ = c.spread_plan(2)
    fails = 0
    for _ in range(4000):
        first = sum(rng.random() < 0.5 for _ in range(n))
        fails += min(first, n - first) < threshold
    assert fails == 0
    # while a pod that gets nothing always fails
    assert 0 < threshold


# ------------------------------------------------ spread over loopback HTTP
class FakeProxy:
    """A loopback HTTP server that picks a 'pod' per request and logs it."""

    def __init__(self, pods, weights, body="<title>Welcome to nginx!</title>"):
        self.logs = dict((p, []) for p in pods)
        rng = random.Random(1)
        lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                with lock:
                    chosen = rng.choices(pods, weights)[0]
                    outer.logs[chosen].append(
                        '127.0.0.1 - - [27/Jun/2023:08:30:40 +0000] "GET %s HTTP/1.1" 200 615 "-" "kubelab-verify" "-"'
                        % self.path)
                data = body.encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def read(self, pod, namespace=None):
        return "\n".join(self.logs[pod])

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def loopback_targets(port, backends):
    return {"namespace": "test", "nodes": [],
            "services": [{"name": "nginx-svc", "namespace": "test", "external_ips": ["127.0.0.1"],
                          "ports": [{"port": port, "protocol": "TCP", "node_port": None}],
                          "endpoints": [], "backends": backends}]}


@pytest.mark.parametrize("weights,verdict", [((1, 1), "pass"), ((1, 0), "fail"), ((19, 1), "fail")])
def test_spread_judges_shares(weights, verdict):
    proxy = FakeProxy(["a", "b"], weights)
    try:
        port = proxy.server.server_address[1]
        r = c.check_spread(loopback_targets(port, ["a", "b"]), proxy, log_wait=0.5)[0]
    finally:
        proxy.close()
    assert r["verdict"] == verdict, r["observed"]
    # one Service: the whole 1e-6 budget is its own -> 60 requests, 12 minimum
    assert (r["details"]["requests"], r["details"]["threshold"]) == (60, 12)
    assert sum(r["details"]["counts"].values()) == 60


def test_spread_counts_only_this_runs_markers_and_flags_unlogged_answers():
    proxy = FakeProxy(["a", "b"], (1, 1))
    proxy.logs["a"].append('1.2.3.4 - - [x] "GET /?kubelab-verify=oldrun-nginx-svc-0001 HTTP/1.1" 200 1 "-" "c" "-"')
    try:
        port = proxy.server.server_address[1]
        t = loopback_targets(port, ["a"])  # b serves but is not an expected backend
        r = c.check_spread(t, proxy, log_wait=0.2, sleep=lambda s: None)[0]
    finally:
        proxy.close()
    assert r["verdict"] == "fail"
    assert "answered requests are in no backend's log" in r["observed"]


class SharedPods:
    """Several Services (one loopback port each, with its own split over the
    pods) in front of the same pods, whose logs they share, as nginx-svc and
    nginx-svc-lb share the nginx pods. ``repeat`` logs every request that
    many times."""

    def __init__(self, pods, weights_by_service, repeat=1):
        self.proxies = {}
        self.logs = dict((pod, []) for pod in pods)
        for name, weights in weights_by_service.items():
            proxy = FakeProxy(pods, weights)
            proxy.logs = self.logs  # one access log per pod, whatever the Service
            self.proxies[name] = proxy
        self.repeat = repeat

    def read(self, pod, namespace=None):
        return "\n".join(line for line in self.logs[pod] for _ in range(self.repeat))

    def targets(self, order):
        return {"namespace": "test", "nodes": [], "services": [
            {"name": name, "namespace": "test", "external_ips": ["127.0.0.1"],
             "ports": [{"port": self.proxies[name].server.server_address[1], "protocol": "TCP", "node_port": None}],
             "endpoints": [], "backends": sorted(self.logs)} for name in order]}

    def close(self):
        for proxy in self.proxies.values():
            proxy.close()


def test_spread_counts_only_its_own_services_requests_not_a_prefix_sharing_one():
    """Issue 14: nginx-svc reaches one pod only; nginx-svc-lb (checked first)
    spreads over both. nginx-svc-lb's requests in pod b's log must not make
    nginx-svc pass."""
    pods = SharedPods(["a", "b"], {"nginx-svc-lb": (1, 1), "nginx-svc": (1, 0)})
    try:
        res = {r["id"]: r for r in c.check_spread(pods.targets(["nginx-svc-lb", "nginx-svc"]), pods,
                                                  log_wait=0.5, sleep=lambda s: None)}
    finally:
        pods.close()
    lb, svc = res["spread:nginx-svc-lb"], res["spread:nginx-svc"]
    assert lb["verdict"] == "pass", lb["observed"]
    assert svc["verdict"] == "fail", svc["observed"]
    assert svc["details"]["counts"]["b"] == 0 and svc["details"]["counted"] == svc["details"]["requests"]
    assert "below" in svc["reason"] and "b (0)" in svc["reason"]
    assert lb["details"]["marker_prefix"] != svc["details"]["marker_prefix"]
    assert lb["details"]["run_id"] == svc["details"]["run_id"]


def test_spread_fails_when_it_counts_more_than_it_sent():
    """Every request shows up twice in the logs: the counts are not of the
    requests sent, whatever the shares look like."""
    pods = SharedPods(["a", "b"], {"nginx-svc": (1, 1)}, repeat=2)
    try:
        r = c.check_spread(pods.targets(["nginx-svc"]), pods, log_wait=0.5, sleep=lambda s: None)[0]
    finally:
        pods.close()
    n = r["details"]["requests"]
    assert r["verdict"] == "fail"
    assert r["details"]["counted"] == 2 * n
    assert "counted %d of this Service's markers in the pod logs but sent %d requests" % (2 * n, n) in r["reason"]
    assert "markers counted more than once" in r["reason"]


def test_spread_skips_services_unreachable_from_outside():
    t = loopback_targets(1, ["a"])
    t["services"][0]["external_ips"] = []
    r = c.check_spread(t, None)[0]
    assert r["verdict"] == "skip" and "no externalIP or nodePort" in r["reason"]


# ------------------------------------------------------------------ node
def test_node_checks_from_crio_config_info_and_service_facts():
    ok = {"host": "w1", "crio": {"source": "daemon", "default_capabilities": ["CHOWN", "NET_RAW"],
                                 "origin": {"default_capabilities": "/etc/crio/crio.conf.d/default_capabilities.conf"}},
          "services": {"crio.service": {"state": "running"}, "kubelet.service": {"state": "running"}}}
    bad = {"host": "w2", "crio": {"default_capabilities": ["CHOWN"], "origin": {}},
           "services": {"crio": "running"}}
    down = {"host": "w3", "crio": {"failed": True, "msg": "crio did not answer on /var/run/crio/crio.sock"},
            "services": {}}
    res = {r["id"]: r for r in c.node_checks([ok, bad, down])}
    assert res["node:w1:crio-capabilities"]["verdict"] == "pass"
    assert "default_capabilities.conf" in res["node:w1:crio-capabilities"]["observed"]
    assert res["node:w1:kubelet-active"]["verdict"] == "pass"
    assert res["node:w2:crio-capabilities"]["verdict"] == "fail"
    assert res["node:w2:kubelet-active"]["observed"] == "not found"
    assert res["node:w3:crio-capabilities"]["verdict"] == "fail"
    assert "crio did not answer" in res["node:w3:crio-capabilities"]["observed"]


@pytest.mark.parametrize("pods, fraction", [(4, 0.8), (2, 0.9), (2, 1.0), (8, 0.6)])
def test_spread_plan_never_overflows_a_float(pods, fraction):
    """Review item 3: math.comb(n, i) * p**i overflowed a float (4 pods at
    0.8, 2 pods at 0.9). Either a plan that meets the budget or a
    ValueError naming the settings - never OverflowError."""
    try:
        n, threshold, prob = c.spread_plan(pods, fraction, 1e-6 / 3)
    except ValueError as exc:
        assert "%d pods and min_fair_fraction %g" % (pods, fraction) in str(exc)
        assert c.spread_settings_problem(pods, fraction, 1e-6, services=3) == str(exc)
    else:
        assert prob <= 1e-6 / 3 and threshold == c.spread_threshold(n, pods, fraction)
        assert c.spread_settings_problem(pods, fraction, 1e-6, services=3) is None


def test_binomial_tail_for_large_n_matches_the_exact_value():
    from fractions import Fraction
    from math import comb
    exact = sum(Fraction(comb(1800, i), 2 ** 1800) for i in range(700))
    assert c.binomial_cdf_below(1800, 0.5, 700) == pytest.approx(float(exact), rel=1e-9)
    assert c.binomial_cdf_below(1800, 0.5, 0) == 0.0 and c.binomial_cdf_below(5, 0.5, 6) == 1.0


def test_spread_settings_problem_says_which_settings_are_feasible():
    assert c.spread_settings_problem(2, 0.4, 1e-6, services=3) is None  # the defaults
    assert c.spread_settings_problem(4, 0.8, 1e-6, services=3) is None  # 1940 requests, but it can be met
    problem = c.spread_settings_problem(2, 0.9, 1e-6, services=3)
    assert problem.startswith("no request count up to 2000 meets a false-failure budget of 3.33333e-07 with 2 pods")
    assert "lower the fair fraction or raise the budget" in problem
    assert "not in (0, 1]" in c.spread_settings_problem(2, 1.5, 1e-6)
    assert "not in (0, 1)" in c.spread_settings_problem(2, 0.4, 0)
    # a fixed request count: only a count no even split can pass is refused
    assert c.spread_settings_problem(2, 0.9, 1e-6, requests=64) is None
    assert "perfectly even split (1 each) is below the threshold of 2" in c.spread_settings_problem(
        3, 1.0, 1e-6, requests=5)


def test_check_spread_with_impossible_settings_fails_that_service_and_sends_nothing():
    targets = {"namespace": "test", "nodes": [], "services": [
        {"name": "web", "namespace": "test", "external_ips": ["127.0.0.1"],
         "ports": [{"port": 9, "protocol": "TCP", "node_port": None}], "endpoints": [], "backends": ["a", "b"]}]}

    class NoLogs:
        def read(self, pod, namespace):
            raise AssertionError("no log is read when no request is sent")

    results = c.check_spread(targets, NoLogs(), min_fair_fraction=0.9, max_false_failure=1e-6)
    assert [(r["id"], r["verdict"], r["reason"]) for r in results] == [("spread:web", "fail", "impossible_settings")]
    assert "min_fair_fraction 0.9" in results[0]["observed"]
