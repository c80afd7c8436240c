# -*- coding: utf-8 -*-
# Copyright: kubelab developers
# MIT License
"""The verification checks of kubelab.

One code path for every environment. The checks take

* a ``targets`` dict (what to probe; built from the cluster's own objects by
  :func:`targets_from_objects`, or by a test data plane),
* an *executor* for commands inside the probe pod: any object with
  ``run(argv, timeout) -> ExecResult`` (:class:`KubeExecExecutor` in the
  modules, a network-namespace executor in the integration tests),
* a *log source* for the nginx pods' access logs: any object with
  ``read(pod_name, namespace) -> str`` (:class:`KubeLogSource` or
  :class:`FileLogSource`),

and return one result dict per check (see :func:`make_result`). Only
transport errors and timeouts are retried; a definite wrong answer (wrong
body, NXDOMAIN, refused TCP connection, permission denied) fails at once.

Load-spreading defaults (binomial argument). With ``k`` ready backends a fair
proxy sends each request to a given pod with probability ``1/k``. A pod fails
when its share is below ``min_fair_fraction / k`` (default 0.4, i.e. 20 % of
the requests with two pods). The number of requests per Service is the
smallest ``N`` with ``k * P[Binomial(N, 1/k) < ceil(0.4 N / k)] <= budget``,
``budget = max_false_failure / number_of_services`` (default 1e-6 for the
whole run). For the lab (two pods, three Services, budget 3.3e-7 each) that is
N = 65 requests per Service, threshold 13: a fair split fails with
probability 2.8e-7 per Service (8.4e-7 for the run), while a dead pod or a
pod the Service does not select gets 0 requests and always fails.
"""

from __future__ import absolute_import, division, print_function

import collections
import http.client
import math
import re
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from ansible.module_utils.kubelab_parsers import (
    CAP_NET_RAW, OK, TIMEOUT, TRANSPORT, capability_names, count_markers, evaluate_nslookup,
    has_capability, marker_prefix, parse_cap_masks, parse_nslookup, parse_ping, parse_tcp_connect, spread_marker,
)

__metaclass__ = type

# verdicts (the kubelab CLI's report reader uses the same words)
PASSED = "pass"
FAILED = "fail"
SKIPPED = "skip"
TRANSIENT = (TIMEOUT, TRANSPORT)
EXCERPT = 600
MARKER_KEY = "kubelab-verify"

# kubernetes.stream.stream swaps api_client.call_api while it opens the
# websocket: serialize the opening (reading runs in parallel afterwards).
_STREAM_LOCK = threading.Lock()

ExecResult = collections.namedtuple("ExecResult", "stdout stderr rc error timed_out")
ExecResult.__new__.__defaults__ = (None, False)


def _excerpt(text, limit=EXCERPT):
    text = text or ""
    if len(text) <= limit:
        return text
    return text[:limit] + "...[%d more chars]" % (len(text) - limit)


def make_result(check_id, stage, source, target, request, expected, observed, verdict,
                attempts=1, duration=0.0, stdout="", stderr="", exit_code=None, reason=None, details=None):
    """One report entry. ``request`` is the command or HTTP request sent;
    ``verdict`` is ``pass``, ``fail`` or ``skip`` (``reason`` says why)."""
    return {
        "id": check_id, "stage": stage, "source": source, "target": target, "request": request,
        "expected": expected, "observed": observed, "verdict": verdict, "attempts": attempts,
        "duration": round(duration, 4), "stdout": _excerpt(stdout), "stderr": _excerpt(stderr),
        "exit_code": exit_code, "reason": reason, "details": details or {},
    }


def skipped(check_id, stage, reason, target=""):
    return make_result(check_id, stage, "-", target, "-", "-", "not run", SKIPPED, attempts=0, reason=reason)


def retrying(attempt_fn, attempts, delay, sleep=time.sleep):
    """Call ``attempt_fn()`` -> ``(outcome, data)`` until the outcome is not
    transient or ``attempts`` are used. Returns ``(outcome, data, attempts_used)``."""
    used = 0
    outcome, data = None, None
    for used in range(1, max(1, attempts) + 1):
        outcome, data = attempt_fn()
        if outcome not in TRANSIENT:
            break
        if used < attempts:
            sleep(delay)
    return outcome, data, used


def run_parallel(func, items, workers):
    """``[func(item) for item in items]``, in a bounded thread pool, order kept."""
    items = list(items)
    if not items:
        return []
    if workers <= 1 or len(items) == 1:
        return [func(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        return list(pool.map(func, items))


# ---------------------------------------------------------------------------
# transports
# ---------------------------------------------------------------------------
class KubeExecExecutor:
    """Run a command in a pod through the Kubernetes API (``pods/exec``).

    stdout, stderr and the exit code come back separately (the websocket's
    channels 1, 2 and the status channel 3). Nothing is left in the pod.
    ``stream_func`` is ``kubernetes.stream.stream`` unless a test injects a
    fake.
    """

    def __init__(self, core_v1, namespace, pod, container=None, stream_func=None):
        self.core_v1 = core_v1
        self.namespace = namespace
        self.pod = pod
        self.container = container
        self.description = "kubernetes exec %s/%s" % (namespace, pod)
        if stream_func is None:
            from kubernetes.stream import stream as stream_func  # pylint: disable=import-outside-toplevel
        self.stream_func = stream_func

    def run(self, argv, timeout):
        kwargs = dict(command=list(argv), stderr=True, stdin=False, stdout=True, tty=False,
                      _preload_content=False)
        if self.container:
            kwargs["container"] = self.container
        out, err = [], []
        try:
            with _STREAM_LOCK:
                resp = self.stream_func(self.core_v1.connect_get_namespaced_pod_exec, self.pod, self.namespace,
                                        **kwargs)
        except Exception as exc:  # ApiException, websocket and socket errors
            return ExecResult("", "", None, "exec failed: %s" % exc, False)
        deadline = time.monotonic() + timeout
        try:
            while resp.is_open():
                left = deadline - time.monotonic()
                if left <= 0:
                    return ExecResult("".join(out), "".join(err), None,
                                      "no exit status within %ss" % timeout, True)
                resp.update(timeout=min(1.0, left))
                if resp.peek_stdout():
                    out.append(resp.read_stdout())
                if resp.peek_stderr():
                    err.append(resp.read_stderr())
            # drain what arrived with the close
            if resp.peek_stdout():
                out.append(resp.read_stdout())
            if resp.peek_stderr():
                err.append(resp.read_stderr())
            rc = resp.returncode
        except Exception as exc:
            return ExecResult("".join(out), "".join(err), None, "exec stream broke: %s" % exc, False)
        finally:
            try:
                resp.close()
            except Exception:  # already closed
                pass
        if rc is None:
            return ExecResult("".join(out), "".join(err), None, "exec ended without an exit status", False)
        return ExecResult("".join(out), "".join(err), int(rc), None, False)


class KubeLogSource:
    """Pod logs through the API (``pods/log``), the last ``since_seconds``."""

    def __init__(self, core_v1, since_seconds=None, container=None):
        self.core_v1 = core_v1
        self.since_seconds = since_seconds
        self.container = container

    def read(self, pod, namespace):
        kwargs = {}
        if self.since_seconds:
            kwargs["since_seconds"] = int(self.since_seconds)
        if self.container:
            kwargs["container"] = self.container
        return self.core_v1.read_namespaced_pod_log(pod, namespace, **kwargs)


class FileLogSource:
    """Access logs read from files: ``{pod name: path}``."""

    def __init__(self, paths):
        self.paths = dict(paths)

    def read(self, pod, namespace=None):
        path = self.paths.get(pod)
        if path is None:
            raise KeyError("no log for pod %s" % pod)
        with open(str(path)) as handle:
            return handle.read()


# ---------------------------------------------------------------------------
# targets from the cluster's objects
# ---------------------------------------------------------------------------
def _labels_match(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def _pod_ready(pod):
    status = pod.get("status") or {}
    if status.get("phase") != "Running":
        return False
    for cond in status.get("conditions") or []:
        if cond.get("type") == "Ready":
            return cond.get("status") == "True"
    return False


def targets_from_objects(namespace, services, pods, nodes, deployments, endpoint_slices,
                         dns_service, cluster_domain="cluster.local", probe_selector=None):
    """Build the targets dict from plain API objects (dicts as the API returns them).

    ``services``, ``pods``, ``deployments``, ``endpoint_slices``: of the
    workload namespace; ``nodes``: all nodes; ``dns_service``: the cluster DNS
    Service object. The expected backends of a Service are the ready pods of
    every Deployment one of whose pods the Service's endpoints (or selector)
    reach: if the Service selects only some of a Deployment's pods, the
    others are still expected and the spread check catches it.
    """
    pod_by_name = dict((p["metadata"]["name"], p) for p in pods)
    node_list = []
    for node in nodes:
        addrs = [a["address"] for a in (node.get("status") or {}).get("addresses") or []
                 if a.get("type") in ("InternalIP", "ExternalIP")]
        node_list.append({"name": node["metadata"]["name"], "addresses": addrs})
    pod_list = []
    for pod in pods:
        spec, status = pod.get("spec") or {}, pod.get("status") or {}
        if not status.get("podIP"):
            continue
        pod_list.append({
            "name": pod["metadata"]["name"], "namespace": pod["metadata"].get("namespace", namespace),
            "ip": status["podIP"], "node": spec.get("nodeName"), "ready": _pod_ready(pod),
            "host_network": bool(spec.get("hostNetwork")), "labels": pod["metadata"].get("labels") or {},
        })
    svc_list = []
    for svc in services:
        meta, spec = svc["metadata"], svc.get("spec") or {}
        name = meta["name"]
        endpoints = []
        for eps in endpoint_slices:
            labels = eps["metadata"].get("labels") or {}
            if labels.get("kubernetes.io/service-name") != name:
                continue
            for ep in eps.get("endpoints") or []:
                ref = ep.get("targetRef") or {}
                cond = ep.get("conditions") or {}
                for addr in ep.get("addresses") or []:
                    endpoints.append({"ip": addr, "pod": ref.get("name"), "node": ep.get("nodeName"),
                                      "ready": cond.get("ready", True) is not False})
        reached = set(e["pod"] for e in endpoints if e["pod"])
        selector = spec.get("selector") or {}
        reached.update(p["name"] for p in pod_list if _labels_match(selector, p["labels"]))
        backends = set()
        for dep in deployments:
            dsel = ((dep.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
            members = [p for p in pod_list if _labels_match(dsel, p["labels"])]
            if any(p["name"] in reached for p in members):
                backends.update(p["name"] for p in members if p["ready"])
        if not backends:
            backends = set(p for p in reached if p in pod_by_name and _pod_ready(pod_by_name[p]))
        ports = []
        for port in spec.get("ports") or []:
            ports.append({"name": port.get("name"), "port": port["port"], "protocol": port.get("protocol", "TCP"),
                          "node_port": port.get("nodePort"), "target_port": port.get("targetPort", port["port"])})
        cluster_ip = spec.get("clusterIP")
        svc_list.append({
            "name": name, "namespace": meta.get("namespace", namespace), "type": spec.get("type", "ClusterIP"),
            "cluster_ip": None if cluster_ip in (None, "None", "") else cluster_ip,
            "external_ips": list(spec.get("externalIPs") or []), "ports": ports,
            "endpoints": endpoints, "backends": sorted(backends),
        })
    dns = None
    if dns_service:
        dspec = dns_service.get("spec") or {}
        dns = {"name": dns_service["metadata"]["name"], "namespace": dns_service["metadata"]["namespace"],
               "cluster_ip": dspec.get("clusterIP"),
               "ports": [{"name": p.get("name"), "port": p["port"], "protocol": p.get("protocol", "TCP")}
                         for p in dspec.get("ports") or []]}
    probe = None
    if probe_selector:
        for p in pod_list:
            if p["namespace"] == namespace and p["ready"] and _labels_match(probe_selector, p["labels"]):
                spec = pod_by_name[p["name"]].get("spec") or {}
                containers = spec.get("containers") or [{}]
                probe = {"name": p["name"], "namespace": p["namespace"], "container": containers[0].get("name"),
                         "node": p["node"]}
                break
    return {"namespace": namespace, "cluster_domain": cluster_domain, "cluster_dns": dns,
            "nodes": node_list, "services": svc_list, "pods": pod_list, "probe_pod": probe}


# ---------------------------------------------------------------------------
# HTTP from outside the cluster
# ---------------------------------------------------------------------------
def http_get(host, port, path, timeout, max_body=1 << 20):
    """One GET on a new connection (so that the proxy picks an endpoint anew).

    Returns ``{"status", "body", "error", "outcome", "latency"}``; ``outcome``
    is ``transport_error``/``timeout`` when no HTTP answer came back.
    """
    start = time.monotonic()
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"User-Agent": "kubelab-verify", "Connection": "close"})
        resp = conn.getresponse()
        body = resp.read(max_body).decode("utf-8", "replace")
        return {"status": resp.status, "body": body, "error": None, "outcome": OK,
                "latency": time.monotonic() - start}
    except (socket.timeout, TimeoutError) as exc:
        return {"status": None, "body": "", "error": "timeout after %ss (%s)" % (timeout, exc),
                "outcome": TIMEOUT, "latency": time.monotonic() - start}
    except (OSError, http.client.HTTPException) as exc:
        return {"status": None, "body": "", "error": "%s: %s" % (type(exc).__name__, exc),
                "outcome": TRANSPORT, "latency": time.monotonic() - start}
    finally:
        conn.close()


def _fmt_host(host):
    return "[%s]" % host if ":" in host else host


def http_targets(targets):
    """Every externalIP x service port and every node address x nodePort."""
    out = []
    seen = set()
    for svc in targets["services"]:
        for port in svc["ports"]:
            if port.get("protocol", "TCP") != "TCP":
                continue
            for ip in svc["external_ips"]:
                key = (svc["name"], ip, port["port"])
                if key not in seen:
                    seen.add(key)
                    out.append({"service": svc["name"], "namespace": svc["namespace"], "kind": "externalIP",
                                "host": ip, "port": port["port"]})
            if port.get("node_port"):
                for node in targets["nodes"]:
                    for addr in node["addresses"]:
                        key = (svc["name"], addr, port["node_port"])
                        if key not in seen:
                            seen.add(key)
                            out.append({"service": svc["name"], "namespace": svc["namespace"], "kind": "nodePort",
                                        "host": addr, "port": port["node_port"], "node": node["name"]})
    return out


def _judge_http(res, body_re):
    if res["outcome"] != OK:
        return res["outcome"], res["error"]
    found = bool(body_re.search(res["body"]))
    observed = "HTTP %s, %d bytes, pattern %s" % (res["status"], len(res["body"]), "found" if found else "NOT found")
    if res["status"] != 200:
        return "wrong_status", observed
    if not found:
        return "wrong_body", observed
    return OK, observed


def check_http(targets, body_pattern="Welcome to nginx!", timeout=3.0, attempts=3, delay=1.0,
               workers=16, source="controller", path="/"):
    """GET every external target; 200 and a body matching ``body_pattern``."""
    body_re = re.compile(body_pattern)

    def one(t):
        url = "http://%s:%s%s" % (_fmt_host(t["host"]), t["port"], path)
        start = time.monotonic()
        last = {}

        def attempt():
            res = http_get(t["host"], t["port"], path, timeout)
            last.update(res)
            return _judge_http(res, body_re)

        outcome, observed, used = retrying(attempt, attempts, delay)
        return make_result(
            "http:%s:%s:%s" % (t["service"], t["host"], t["port"]), "external", source,
            "%s %s:%s (%s)" % (t["service"], t["host"], t["port"], t["kind"]), "GET " + url,
            "HTTP 200, body matches %r" % body_pattern, observed, PASSED if outcome == OK else FAILED,
            attempts=used, duration=time.monotonic() - start, stdout=last.get("body", "")[:200],
            reason=None if outcome == OK else outcome,
            details={"status": last.get("status"), "latency_ms": round(last.get("latency", 0) * 1000, 2),
                     "url": url, "service": t["service"], "host": t["host"], "port": t["port"], "kind": t["kind"],
                     "node": t.get("node")})

    return run_parallel(one, http_targets(targets), workers)


# ---------------------------------------------------------------------------
# load spreading
# ---------------------------------------------------------------------------
SPREAD_MAX_REQUESTS = 2000


def binomial_cdf_below(n, p, k):
    """P[Binomial(n, p) < k].

    Summed in log space (``log pmf(i+1) = log pmf(i) + log((n-i)/(i+1)) +
    log(p/(1-p))``): no term is an int or a float that overflows, whatever
    ``n`` (``math.comb(2000, 1000)`` has 600 digits, more than a float holds).
    """
    n, k = int(n), int(k)
    if k <= 0:
        return 0.0
    if k > n:
        return 1.0
    if p <= 0:
        return 1.0  # every draw is 0 < k
    if p >= 1:
        return 0.0  # every draw is n >= k
    log_odds = math.log(p) - math.log1p(-p)
    term = n * math.log1p(-p)  # log P[X = 0]
    logs = [term]
    for i in range(k - 1):
        term += math.log((n - i) / (i + 1)) + log_odds
        logs.append(term)
    top = max(logs)
    return min(1.0, math.exp(top) * math.fsum(math.exp(t - top) for t in logs))


def spread_threshold(n, pods, min_fair_fraction):
    """Fewest requests of ``n`` a pod of ``pods`` must get."""
    return int(math.ceil(min_fair_fraction / pods * n - 1e-9))


def spread_plan(pods, min_fair_fraction=0.4, budget=1e-6, max_requests=SPREAD_MAX_REQUESTS):
    """Smallest request count ``n`` and per-pod threshold for ``pods`` backends.

    Returns ``(n, threshold, false_failure_probability)``: a pod fails with
    fewer than ``threshold`` of ``n`` requests; a fair proxy causes such a
    false failure with the returned probability (union bound over pods).
    Raises ValueError (naming the settings) when no ``n`` up to
    ``max_requests`` meets the budget: see :func:`spread_settings_problem`.
    """
    if pods <= 1:
        # nothing to split; still enough requests to see answers that come
        # from a pod that is not the expected one
        n = 10
        return n, int(math.ceil(min_fair_fraction * n - 1e-9)), 0.0
    p = 1.0 / pods
    for n in range(pods, int(max_requests) + 1):
        threshold = spread_threshold(n, pods, min_fair_fraction)
        prob = min(1.0, pods * binomial_cdf_below(n, p, threshold))
        if prob <= budget:
            return n, threshold, prob
    raise ValueError(
        "no request count up to %d meets a false-failure budget of %g with %d pods and min_fair_fraction %g: "
        "a fair proxy would fail the spread check too often; lower the fair fraction or raise the budget"
        % (max_requests, budget, pods, min_fair_fraction))


def spread_settings_problem(pods, min_fair_fraction=0.4, max_false_failure=1e-6, services=1, requests=0,
                            max_requests=SPREAD_MAX_REQUESTS):
    """Why these spread settings cannot work, or None when they can.

    The settings of the verify role: ``pods`` ready nginx backends per
    Service, ``services`` Services checked (the run's ``max_false_failure``
    is split evenly over them, as :func:`check_spread` does), ``requests`` (0
    = derived by :func:`spread_plan`). Pure and quick (about a second for
    the longest search, an impossible setting), so a validator can call it
    before any stage.
    """
    if not 0 < min_fair_fraction <= 1:
        return "min_fair_fraction %r is not in (0, 1]" % (min_fair_fraction,)
    if not 0 < max_false_failure < 1:
        return "max_false_failure %r is not in (0, 1)" % (max_false_failure,)
    pods = int(pods)
    if pods < 1:
        return "%d pods: the spread check needs at least one ready backend" % pods
    budget = max_false_failure / max(1, int(services))
    if requests:
        requests = int(requests)
        if pods > 1 and spread_threshold(requests, pods, min_fair_fraction) > requests // pods:
            # even a perfectly even split of `requests` leaves a pod below the threshold
            return ("%d requests over %d pods: a perfectly even split (%d each) is below the threshold of %d "
                    "(min_fair_fraction %g); send more requests or lower the fraction"
                    % (requests, pods, requests // pods, spread_threshold(requests, pods, min_fair_fraction),
                       min_fair_fraction))
        return None
    try:
        spread_plan(pods, min_fair_fraction, budget, max_requests)
    except ValueError as exc:
        return str(exc)
    return None


def check_spread(targets, log_source, requests=0, min_fair_fraction=0.4, max_false_failure=1e-6,
                 body_pattern="Welcome to nginx!", timeout=3.0, workers=8, log_wait=15.0, run_id=None,
                 source="controller", path="/", sleep=time.sleep):
    """Send marked requests through each Service and count them in the pods' logs.

    For each Service with external targets: ``requests`` (0 = from
    :func:`spread_plan`) GETs, round-robin over its external targets, each
    with ``?kubelab-verify=<run_id>.<namespace>.<service>.<seq>`` (a marker
    unique to the Service and the run: see ``marker_prefix``); then the
    access logs of the expected backends (and of the endpoint pods) are read
    until every answered request is found (or ``log_wait`` seconds). Only
    that Service's markers of this run are counted. Fails when a request
    fails or gets a wrong answer, when an expected pod's share is below
    ``min_fair_fraction / k``, when answered requests are missing from every
    log, or when the logs hold more of its markers than it sent (or one
    marker more than once): then the count is not of its own requests.
    """
    run_id = run_id or uuid.uuid4().hex[:12]
    body_re = re.compile(body_pattern)
    all_targets = http_targets(targets)
    services = [s for s in targets["services"] if any(t["service"] == s["name"] for t in all_targets)]
    results = []
    for svc in targets["services"]:
        if svc not in services:
            results.append(skipped("spread:%s" % svc["name"], "spread",
                                   "no externalIP or nodePort to reach it from outside", svc["name"]))
    budget = max_false_failure / max(1, len(services))
    for svc in services:
        start = time.monotonic()
        backends = list(svc["backends"])
        svc_targets = [t for t in all_targets if t["service"] == svc["name"]]
        if not backends:
            results.append(make_result("spread:%s" % svc["name"], "spread", source, svc["name"], "-",
                                       "ready backend pods", "no ready backend pod", FAILED, reason="no_backends"))
            continue
        try:
            n, threshold, prob = spread_plan(len(backends), min_fair_fraction, budget)
        except ValueError as exc:  # settings no fair proxy can pass: say so, check the other Services
            results.append(make_result(
                "spread:%s" % svc["name"], "spread", source, "%s/%s" % (svc["namespace"], svc["name"]), "-",
                "a request count that meets the false-failure budget", "not run: %s" % exc, FAILED,
                reason="impossible_settings"))
            continue
        if requests:
            n = int(requests)
            threshold = spread_threshold(n, len(backends), min_fair_fraction)
            prob = (min(1.0, len(backends) * binomial_cdf_below(n, 1.0 / len(backends), threshold))
                    if len(backends) > 1 else 0.0)
        prefix = marker_prefix(run_id, svc["namespace"], svc["name"])

        def one(i, svc_targets=svc_targets, prefix=prefix):
            t = svc_targets[i % len(svc_targets)]
            marker = spread_marker(prefix, i)
            res = http_get(t["host"], t["port"], "%s?%s=%s" % (path, MARKER_KEY, marker), timeout)
            outcome, observed = _judge_http(res, body_re)
            return {"marker": marker, "outcome": outcome, "observed": observed,
                    "target": "%s:%s" % (t["host"], t["port"])}

        sent = run_parallel(one, range(n), workers)
        answered = [s for s in sent if s["outcome"] == OK]
        bad = [s for s in sent if s["outcome"] != OK]
        read_pods = list(backends) + sorted(set(e["pod"] for e in svc["endpoints"] if e["pod"]) - set(backends))
        answered_markers = set(s["marker"] for s in answered)
        counts, log_errors, seen = {}, {}, {}
        deadline = time.monotonic() + log_wait
        while True:
            counts, log_errors, seen = {}, {}, {}
            for pod in read_pods:
                try:
                    text = log_source.read(pod, svc["namespace"])
                    markers = count_markers(text, MARKER_KEY, prefix)
                    counts[pod] = sum(markers.values())
                    for marker, times in markers.items():
                        seen[marker] = seen.get(marker, 0) + times
                except Exception as exc:  # API or file errors: reported, not fatal
                    counts[pod] = 0
                    log_errors[pod] = str(exc)
            if answered_markers <= set(seen) or time.monotonic() >= deadline:
                break
            sleep(0.5)
        shares = dict((pod, (counts[pod] / float(n)) if n else 0.0) for pod in read_pods)
        low = [pod for pod in backends if counts.get(pod, 0) < threshold]
        unaccounted = len(answered_markers - set(seen))
        counted = sum(counts.values())
        twice = sorted((m, c) for m, c in seen.items() if c > 1)
        problems = []
        if bad:
            kinds = collections.Counter(s["outcome"] for s in bad)
            problems.append("%d of %d requests failed (%s; first: %s)" % (
                len(bad), n, ", ".join("%s x%d" % kv for kv in sorted(kinds.items())), bad[0]["observed"]))
        if low:
            problems.append("below %d of %d requests: %s" % (
                threshold, n, ", ".join("%s (%d)" % (pod, counts.get(pod, 0)) for pod in low)))
        if unaccounted > 0:
            problems.append("%d answered requests are in no backend's log" % unaccounted)
        if counted > n:
            problems.append("counted %d of this Service's markers in the pod logs but sent %d requests" % (counted, n))
        if twice:
            problems.append("%d markers counted more than once (first: %s x%d)" % (len(twice), twice[0][0], twice[0][1]))
        if log_errors:
            problems.append("log read errors: %s" % "; ".join("%s: %s" % kv for kv in sorted(log_errors.items())))
        observed = ", ".join("%s %d (%.0f%%)" % (pod, counts.get(pod, 0), 100 * shares[pod]) for pod in read_pods)
        if problems:
            observed += " - " + "; ".join(problems)
        results.append(make_result(
            "spread:%s" % svc["name"], "spread", source, "%s/%s" % (svc["namespace"], svc["name"]),
            "%d marked GETs over %s, markers counted in pod logs" % (n, ", ".join(sorted(set(s["target"] for s in sent)))),
            "every request answered; each of %d ready pods >= %d of %d (%.0f%% = %.1f x fair share); "
            "false-failure probability %.1e" % (len(backends), threshold, n, 100.0 * threshold / n,
                                                min_fair_fraction, prob),
            observed, FAILED if problems else PASSED, duration=time.monotonic() - start,
            reason="; ".join(problems) or None,
            details={"requests": n, "threshold": threshold, "counts": counts, "shares": shares,
                     "failed_requests": len(bad), "false_failure_probability": prob, "run_id": run_id,
                     "marker_prefix": prefix, "answered": len(answered), "counted": counted,
                     "backends": backends}))
    return results


# ---------------------------------------------------------------------------
# from inside the probe pod
# ---------------------------------------------------------------------------
def _exec_attempt(executor, argv, timeout, classify, store):
    def attempt():
        res = executor.run(argv, timeout)
        store["res"] = res
        if res.error is not None:
            return (TIMEOUT if res.timed_out else TRANSPORT), res.error
        return classify(res)
    return attempt


class PodProbe:
    """Ping, TCP connect and DNS checks run in the probe pod through ``executor``."""

    def __init__(self, executor, targets, attempts=3, delay=1.0, timeout=5, workers=8,
                 node_crio_capabilities=None, sleep=time.sleep):
        self.executor = executor
        self.targets = targets
        self.attempts = attempts
        self.delay = delay
        self.timeout = timeout
        self.workers = workers
        self.node_caps = node_crio_capabilities or {}
        self.sleep = sleep
        probe = targets.get("probe_pod") or {}
        self.source = "pod %s/%s" % (probe.get("namespace"), probe.get("name"))
        self._cap_lock = threading.Lock()
        self._cap_info = None

    # -- helpers
    def _run_check(self, check_id, stage, target, argv, expected, classify, exec_timeout):
        store = {}
        start = time.monotonic()
        outcome, observed, used = retrying(_exec_attempt(self.executor, argv, exec_timeout, classify, store),
                                           self.attempts, self.delay, self.sleep)
        res = store.get("res") or ExecResult("", "", None, "not run", False)
        return outcome, make_result(
            check_id, stage, self.source, target, " ".join(argv), expected, observed,
            PASSED if outcome == OK else FAILED, attempts=used, duration=time.monotonic() - start,
            stdout=res.stdout, stderr=res.stderr, exit_code=res.rc, reason=None if outcome == OK else outcome)

    def capability_info(self):
        """CapEff of the pod's PID 1 and whether NET_RAW (bit 13) is in it (cached)."""
        with self._cap_lock:
            if self._cap_info is None:
                res = self.executor.run(["cat", "/proc/1/status"], self.timeout + 5)
                masks = parse_cap_masks(res.stdout) if res.error is None else {}
                eff = masks.get("CapEff")
                self._cap_info = {"cap_eff": None if eff is None else "%016x" % eff,
                                  "net_raw": None if eff is None else has_capability(eff, CAP_NET_RAW),
                                  "names": [] if eff is None else capability_names(eff)}
            return self._cap_info

    def _crio_caps_for(self, node):
        if not node:
            return None
        for key in (node, node.split(".")[0]):
            if key in self.node_caps:
                return self.node_caps[key]
        for name, caps in self.node_caps.items():
            if name.split(".")[0] == node.split(".")[0]:
                return caps
        return None

    # -- checks
    def ping(self, pod):
        argv = ["ping", "-c", "1", "-W", "2", pod["ip"]]

        def classify(res):
            parsed = parse_ping(res.stdout, res.stderr, res.rc)
            if parsed["outcome"] == OK:
                return OK, "%s/%s replies, avg %s ms" % (parsed["received"], parsed["transmitted"], parsed["rtt_avg_ms"])
            if parsed["outcome"] == TIMEOUT:
                return TIMEOUT, "no reply: %s/%s packets lost (network problem)" % (
                    parsed["transmitted"], parsed["transmitted"])
            return parsed["outcome"], (res.stderr or res.stdout).strip().splitlines()[-1:] and \
                (res.stderr or res.stdout).strip().splitlines()[-1] or "exit %s" % res.rc

        outcome, result = self._run_check("ping:%s" % pod["name"], "pod", "%s (%s)" % (pod["ip"], pod["name"]),
                                          argv, "echo replies from the pod IP", classify, self.timeout + 10)
        if outcome == "permission_denied":
            info = self.capability_info()
            node = (self.targets.get("probe_pod") or {}).get("node")
            crio = self._crio_caps_for(node)
            if crio is None:
                crio_text = "CRI-O default_capabilities on %s: unknown" % node
            else:
                crio_text = "CRI-O effective default_capabilities on %s: %s (NET_RAW %s)" % (
                    node, ",".join(crio), "present" if "NET_RAW" in crio else "ABSENT")
            result["observed"] = "permission denied: no raw socket (CAP_NET_RAW missing in the pod); " \
                "/proc/1/status CapEff=%s, NET_RAW bit 13 = %s; %s" % (
                    info["cap_eff"], {True: 1, False: 0}.get(info["net_raw"], "unknown"), crio_text)
            if crio is not None and "NET_RAW" in crio:
                result["observed"] += " - the pod predates the CRI-O change: recreate it"
            result["details"].update({"cap_eff": info["cap_eff"], "net_raw": info["net_raw"],
                                      "crio_default_capabilities": crio})
        return result

    def tcp(self, name, port):
        script = "timeout %d telnet %s %d </dev/null" % (self.timeout, name, port)
        argv = ["sh", "-c", script]

        def classify(res):
            outcome = parse_tcp_connect(res.stdout, res.stderr, res.rc)
            text = (res.stdout + res.stderr).strip().splitlines()
            if outcome == TIMEOUT:
                return outcome, "no answer within %ss (timeout, exit %s)" % (self.timeout, res.rc)
            return outcome, (text[0] if text else "exit %s" % res.rc)

        return self._run_check("tcp:%s:%d" % (name, port), "pod", "%s:%d" % (name, port), argv,
                               "Connected to %s" % name, classify, self.timeout + 10)[1]

    def dns(self, name, fqdn, address):
        server = (self.targets.get("cluster_dns") or {}).get("cluster_ip")
        argv = ["nslookup", name]

        def classify(res):
            parsed = parse_nslookup(res.stdout, res.stderr)
            return evaluate_nslookup(parsed, server, fqdn, address)

        return self._run_check("dns:%s" % name, "pod", name, argv,
                               "answered by %s: %s -> %s" % (server, fqdn, address), classify, self.timeout + 15)[1]

    def plan(self):
        """The list of (callable, args) for every in-pod check."""
        t = self.targets
        probe = t.get("probe_pod") or {}
        jobs = []
        for pod in t["pods"]:
            if pod["name"] == probe.get("name") or pod.get("host_network") or not pod.get("ip"):
                continue
            jobs.append((self.ping, (pod,)))
        domain = t.get("cluster_domain", "cluster.local")
        for svc in t["services"]:
            if svc["namespace"] != t["namespace"]:
                continue
            for port in svc["ports"]:
                if port.get("protocol", "TCP") == "TCP":
                    jobs.append((self.tcp, (svc["name"], port["port"])))
            if svc.get("cluster_ip"):
                fqdn = "%s.%s.svc.%s" % (svc["name"], svc["namespace"], domain)
                jobs.append((self.dns, (svc["name"], fqdn, svc["cluster_ip"])))
                jobs.append((self.dns, (fqdn, fqdn, svc["cluster_ip"])))
        dns = t.get("cluster_dns")
        if dns:
            for port in dns["ports"]:
                if port.get("protocol") == "TCP" and port["port"] == 53:
                    jobs.append((self.tcp, ("%s.%s" % (dns["name"], dns["namespace"]), 53)))
        return jobs

    def run(self):
        return run_parallel(lambda job: job[0](*job[1]), self.plan(), self.workers)


# ---------------------------------------------------------------------------
# node level
# ---------------------------------------------------------------------------
def node_checks(nodes, required_capability="NET_RAW", services=("crio", "kubelet")):
    """Results for every node from what the node tasks gathered.

    ``nodes``: ``[{"host", "crio": <crio_config_info result>, "services":
    {"crio": "running", ...}}]`` (or ``service_facts`` entries keyed
    ``crio.service``).
    """
    results = []
    for node in nodes:
        host = node["host"]
        crio = node.get("crio") or {}
        caps = crio.get("default_capabilities")
        origin = (crio.get("origin") or {}).get("default_capabilities")
        # A node kubelab could not reach (or that gave no data): every check of
        # it fails, saying it was not checked and why - never "not found".
        unchecked = None
        if crio.get("unreachable") or node.get("unreachable"):
            unchecked = ("unreachable", "not checked: %s was unreachable (%s)" % (
                host, clean_message(crio.get("msg") or node.get("msg") or "no answer")))
        elif node.get("no_data"):
            unchecked = ("no_data", "not checked: %s" % (crio.get("msg") or node.get("msg") or "no data from this node"))
        if unchecked:
            verdict, observed = FAILED, unchecked[1]
        elif crio.get("failed") or caps is None:
            observed = "could not read CRI-O's effective configuration: %s" % (crio.get("msg") or "no data")
            verdict = FAILED
        else:
            verdict = PASSED if required_capability in caps else FAILED
            observed = "default_capabilities = %s (set by %s)" % (",".join(caps), origin or "unknown")
        results.append(make_result(
            "node:%s:crio-capabilities" % host, "node", host, "crio (%s)" % crio.get("source", "daemon"),
            "crio status config (crio_config_info)", "%s in the effective default_capabilities" % required_capability,
            observed, verdict, reason=unchecked[0] if unchecked else (None if verdict == PASSED else "missing_capability"),
            details={"default_capabilities": caps, "origin": origin}))
        states = node.get("services") or {}
        if unchecked:
            for svc in services:
                results.append(make_result(
                    "node:%s:%s-active" % (host, svc), "node", host, "%s.service" % svc, "systemd unit state",
                    "running", unchecked[1], FAILED, reason=unchecked[0]))
            continue
        for svc in services:
            # either {"crio": "running"} or service_facts' {"crio.service": {"state": "running", ...}}
            state = states.get(svc)
            if state is None:
                state = (states.get(svc + ".service") or {}).get("state")
            verdict = PASSED if state == "running" else FAILED
            results.append(make_result(
                "node:%s:%s-active" % (host, svc), "node", host, "%s.service" % svc, "systemd unit state",
                "running", state or "not found", verdict, reason=None if verdict == PASSED else "not_running"))
    return results


# ---------------------------------------------------------------------------
# Kubernetes API access for the modules
# ---------------------------------------------------------------------------
def clean_message(text, limit=300):
    """One line of at most ``limit`` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[:limit - 3] + "..."


def kube_api_client(kubeconfig, context=None):
    """An ``ApiClient`` for ``kubeconfig`` (imports the client lazily)."""
    from kubernetes import config  # pylint: disable=import-outside-toplevel
    return config.new_client_from_config(config_file=kubeconfig, context=context)


def _endpoints_as_slices(endpoints_list):
    """core/v1 Endpoints -> EndpointSlice-shaped dicts (fallback for old APIs)."""
    slices = []
    for ep in endpoints_list:
        name = ep["metadata"]["name"]
        items = []
        for subset in ep.get("subsets") or []:
            for ready, key in ((True, "addresses"), (False, "notReadyAddresses")):
                for addr in subset.get(key) or []:
                    items.append({"addresses": [addr["ip"]], "targetRef": addr.get("targetRef") or {},
                                  "nodeName": addr.get("nodeName"), "conditions": {"ready": ready}})
        slices.append({"metadata": {"name": name, "labels": {"kubernetes.io/service-name": name}},
                       "endpoints": items})
    return slices


def fetch_objects(api_client, namespace, dns_service, dns_namespace):
    """The plain-dict objects ``targets_from_objects`` needs, read through the API."""
    from kubernetes import client  # pylint: disable=import-outside-toplevel
    from kubernetes.client.rest import ApiException  # pylint: disable=import-outside-toplevel
    core = client.CoreV1Api(api_client)
    apps = client.AppsV1Api(api_client)
    plain = api_client.sanitize_for_serialization
    objs = {
        "services": plain(core.list_namespaced_service(namespace)).get("items") or [],
        "pods": plain(core.list_namespaced_pod(namespace)).get("items") or [],
        "nodes": plain(core.list_node()).get("items") or [],
        "deployments": plain(apps.list_namespaced_deployment(namespace)).get("items") or [],
    }
    try:
        slices = client.DiscoveryV1Api(api_client).list_namespaced_endpoint_slice(namespace)
        objs["endpoint_slices"] = plain(slices).get("items") or []
    except ApiException as exc:
        if exc.status != 404:
            raise
        objs["endpoint_slices"] = _endpoints_as_slices(plain(core.list_namespaced_endpoints(namespace)).get("items") or [])
    try:
        objs["dns_service"] = plain(core.read_namespaced_service(dns_service, dns_namespace))
    except ApiException as exc:
        if exc.status != 404:
            raise
        objs["dns_service"] = None
    return objs


def not_ready(objs, targets, need_probe_pod):
    """What is not ready yet: Deployments short of replicas, Services without
    a ready endpoint, the probe pod, the cluster DNS Service."""
    waiting = []
    for dep in objs["deployments"]:
        spec, status = dep.get("spec") or {}, dep.get("status") or {}
        want = spec.get("replicas", 1)
        have = status.get("readyReplicas") or 0
        if have < want:
            waiting.append("deployment %s: %d/%d ready" % (dep["metadata"]["name"], have, want))
    for svc in targets["services"]:
        if svc["type"] == "ExternalName":
            continue
        if not any(e["ready"] for e in svc["endpoints"]):
            waiting.append("service %s: no ready endpoint" % svc["name"])
    if need_probe_pod and not targets.get("probe_pod"):
        waiting.append("probe pod: none ready")
    if not targets.get("cluster_dns"):
        waiting.append("cluster DNS service: not found")
    return waiting


def discover_targets(api_client, namespace="test", dns_service="kube-dns", dns_namespace="kube-system",
                     cluster_domain="cluster.local", probe_selector=None, wait_timeout=300, poll_interval=2.0,
                     sleep=time.sleep, clock=time.monotonic, fetch=fetch_objects):
    """Poll the API until the workloads are ready (or ``wait_timeout``).

    Returns ``(targets, waited seconds, waiting)``; ``waiting`` lists what is
    still not ready (empty when everything is)."""
    start = clock()
    deadline = start + max(0, wait_timeout)
    while True:
        objs = fetch(api_client, namespace, dns_service, dns_namespace)
        targets = targets_from_objects(
            namespace, objs["services"], objs["pods"], objs["nodes"], objs["deployments"],
            objs["endpoint_slices"], objs["dns_service"], cluster_domain=cluster_domain,
            probe_selector=probe_selector or None)
        waiting = not_ready(objs, targets, bool(probe_selector))
        if not waiting or clock() >= deadline:
            return targets, clock() - start, waiting
        sleep(poll_interval)


def not_ready_message(wait_timeout, namespace, waiting, probe_selector, dns_namespace, dns_service):
    """The readiness failure, naming what is not ready and what was expected."""
    return ("not ready after %ss in namespace %s: %s (expected: every Deployment fully ready, every Service "
            "with a ready endpoint, a ready probe pod %s, the DNS Service %s/%s)" % (
                wait_timeout, namespace, "; ".join(waiting), probe_selector, dns_namespace, dns_service))


def exit_with_results(module, results, prefix, label="request", fail_on_check_failure=True):
    """End a verification module: fail naming every failed check (label,
    expected, observed) when asked to, else exit with the results. Never
    changed."""
    failed = [r["id"] for r in results if r["verdict"] == "fail"]
    if failed and fail_on_check_failure:
        module.fail_json(msg=prefix + "; ".join(
            "%s: expected %s, observed %s" % (r[label], r["expected"], r["observed"])
            for r in results if r["verdict"] == "fail"), results=results, failed_checks=failed, changed=False)
    module.exit_json(changed=False, results=results, failed_checks=failed)
