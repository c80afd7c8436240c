"""The probe modules' main(): arguments, check mode, messages (no root, no cluster)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ansible.module_utils import kubelab_checks as c
from ansible.module_utils.testing import patch_module_args

import kubelab_http_probe
import kubelab_pod_probe
import kubelab_spread
import kubelab_verify_cluster
import kubelab_verify_targets

pytestmark = pytest.mark.unit


def run(module, args, capsys, check_mode=False):
    if check_mode:
        args = dict(args, _ansible_check_mode=True)
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exc:
            module.main()
    return exc.value.code, json.loads(capsys.readouterr().out)


@pytest.fixture
def web():
    """A loopback web server; ``web.body`` is what it serves."""

    class State:
        body = "<title>Welcome to nginx!</title>"
        hits = 0

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            State.hits += 1
            data = State.body.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    State.port = server.server_address[1]
    yield State
    server.shutdown()
    server.server_close()


def targets_for(port):
    return {"namespace": "test", "nodes": [{"name": "n1", "addresses": ["127.0.0.1"]}],
            "services": [{"name": "nginx-svc-np", "namespace": "test", "external_ips": [],
                          "ports": [{"port": 8081, "protocol": "TCP", "node_port": port}],
                          "endpoints": [], "backends": ["a"]}]}


def test_http_probe_passes_in_check_mode(web, capsys):
    rc, out = run(kubelab_http_probe, {"targets": targets_for(web.port)}, capsys, check_mode=True)
    assert rc == 0 and out["changed"] is False and out["failed_checks"] == []
    r = out["results"][0]
    assert r["id"] == "http:nginx-svc-np:127.0.0.1:%d" % web.port
    assert r["details"]["status"] == 200 and r["details"]["latency_ms"] >= 0


def test_http_probe_wrong_body_fails_at_once_naming_url_expected_observed(web, capsys):
    web.body = "<h1>It works!</h1>"
    rc, out = run(kubelab_http_probe, {"targets": targets_for(web.port), "attempts": 3, "delay": 0}, capsys)
    assert rc == 1
    assert web.hits == 1  # a definite wrong answer is not retried
    assert "GET http://127.0.0.1:%d/" % web.port in out["msg"]
    assert "expected HTTP 200, body matches 'Welcome to nginx!'" in out["msg"]
    assert "pattern NOT found" in out["msg"]


def test_http_probe_refused_is_retried_and_reported_without_failing_the_task(capsys):
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    rc, out = run(kubelab_http_probe, {"targets": targets_for(port), "attempts": 2, "delay": 0,
                                       "fail_on_check_failure": False}, capsys)
    assert rc == 0
    r = out["results"][0]
    assert r["verdict"] == "fail" and r["attempts"] == 2 and r["reason"] == "transport_error"
    assert out["failed_checks"] == [r["id"]]


def test_http_probe_rejects_a_wrong_targets_dict(capsys):
    rc, out = run(kubelab_http_probe, {"targets": {"nodes": []}}, capsys)
    assert rc == 1 and "not a kubelab_verify_targets result" in out["msg"]


def test_pod_probe_needs_a_probe_pod(capsys):
    rc, out = run(kubelab_pod_probe, {"kubeconfig": "/nonexistent", "targets": {"services": [], "probe_pod": None}},
                  capsys)
    assert rc == 1 and "no probe_pod" in out["msg"] and "observed none" in out["msg"]


def test_pod_probe_main_uses_the_api_executor(monkeypatch, capsys):
    """main() wires KubeExecExecutor to the probe pod; the exec stream is faked."""
    seen = {}

    class Exec(c.KubeExecExecutor):
        def __init__(self, core, namespace, pod, container=None):
            seen.update(namespace=namespace, pod=pod, container=container)

        def run(self, argv, timeout):
            if argv[0] == "nslookup":
                out = ("Server:\t\t10.96.0.10\nAddress:\t10.96.0.10:53\n\nName:\tnginx-svc.test.svc.cluster.local\n"
                       "Address: 10.105.132.127\n\nNon-authoritative answer:\n\n")
                return c.ExecResult(out, "", 0, None, False)
            return c.ExecResult("Connected to nginx-svc\n", "", 0, None, False)

    monkeypatch.setattr(kubelab_pod_probe, "KubeExecExecutor", Exec)
    monkeypatch.setattr(kubelab_pod_probe, "kube_api_client", lambda path, ctx: object())
    targets = {"namespace": "test", "cluster_domain": "cluster.local",
               "cluster_dns": {"name": "kube-dns", "namespace": "kube-system", "cluster_ip": "10.96.0.10", "ports": []},
               "services": [{"name": "nginx-svc", "namespace": "test", "cluster_ip": "10.105.132.127",
                             "ports": [{"port": 80, "protocol": "TCP"}]}],
               "pods": [], "probe_pod": {"name": "busybox-1", "namespace": "test", "container": "busybox",
                                         "node": "w1"}}
    rc, out = run(kubelab_pod_probe, {"kubeconfig": "/k", "targets": targets}, capsys, check_mode=True)
    assert rc == 0, out
    assert seen == {"namespace": "test", "pod": "busybox-1", "container": "busybox"}
    assert sorted(r["id"] for r in out["results"]) == ["dns:nginx-svc", "dns:nginx-svc.test.svc.cluster.local",
                                                       "tcp:nginx-svc:80"]
    assert out["changed"] is False


def test_spread_rejects_a_bad_fraction(capsys):
    rc, out = run(kubelab_spread, {"kubeconfig": "/k", "targets": {}, "min_fair_fraction": 1.5}, capsys)
    assert rc == 1 and "min_fair_fraction" in out["msg"]


@pytest.mark.parametrize("name", ["kubelab_verify_targets", "kubelab_http_probe", "kubelab_spread",
                                  "kubelab_pod_probe", "kubelab_verify_report", "kubelab_verify_cluster"])
def test_documentation_matches_the_argument_spec(name, monkeypatch):
    import importlib

    import yaml

    module = importlib.import_module(name)
    doc = yaml.safe_load(module.DOCUMENTATION)
    yaml.safe_load(module.EXAMPLES)
    yaml.safe_load(module.RETURN)
    captured = {}

    class Stop(Exception):
        pass

    def fake(argument_spec, supports_check_mode=False, **kwargs):
        captured.update(spec=argument_spec, check_mode=supports_check_mode)
        raise Stop

    monkeypatch.setattr(module, "AnsibleModule", fake)
    with pytest.raises(Stop):
        module.main()
    assert captured["check_mode"] is True
    assert doc["module"] == name
    assert sorted(doc["options"]) == sorted(captured["spec"])
    for opt, spec in captured["spec"].items():
        documented = doc["options"][opt]
        assert documented.get("type", "str") == spec.get("type", "str"), opt
        assert documented.get("default") == spec.get("default"), opt
        assert bool(documented.get("required")) == bool(spec.get("required")), opt


@pytest.mark.parametrize("path", ["module_utils/kubelab_checks.py", "module_utils/kubelab_parsers.py",
                                  "module_utils/kubelab_report.py", "module_utils/kubelab_report_html.py",
                                  "library/kubelab_http_probe.py"])
def test_node_side_code_is_python38_syntax(path):
    """kubelab_http_probe may run on the nodes (verify_http_from_nodes): Python 3.8 grammar."""
    import ast
    from pathlib import Path

    source = (Path(__file__).resolve().parent.parent.parent / path).read_text()
    ast.parse(source, feature_version=(3, 8))


def test_module_utils_run_on_python38(tmp_path):
    """Import and use the shared code with a real Python 3.8 when one is installed."""
    import glob
    import shutil
    import subprocess
    from pathlib import Path

    candidates = sorted(glob.glob("/root/.pyenv/versions/3.8*/bin/python")) + [shutil.which("python3.8")]
    py38 = next((c for c in candidates
                 if c and subprocess.run([c, "-c", "import sys; assert sys.version_info[:2] == (3, 8)"],
                                         capture_output=True).returncode == 0), None)
    if py38 is None:
        pytest.skip("no Python 3.8 on this machine")
    root = Path(__file__).resolve().parent.parent.parent
    pkg = tmp_path / "ansible" / "module_utils"
    pkg.mkdir(parents=True)
    (tmp_path / "ansible" / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    for name in ("kubelab_checks", "kubelab_parsers", "kubelab_report", "kubelab_report_html"):
        shutil.copy(root / "module_utils" / f"{name}.py", pkg)
    capture = root / "tests" / "data" / "captures" / "nslookup_short_ok.json"
    code = (
        "import json, sys; sys.path.insert(0, %r)\n"
        "from ansible.module_utils import kubelab_checks as c, kubelab_parsers as p, kubelab_report as r\n"
        "d = json.load(open(%r))\n"
        "print(p.evaluate_nslookup(p.parse_nslookup(d['stdout']), '10.96.0.10',"
        " 'nginx-svc.test.svc.cluster.local', '10.105.132.127')[0])\n"
        "print(c.spread_plan(2, 0.4, 1e-6 / 3)[:2])\n"
        "print(r.to_junit([c.make_result('a', 'node', 's', 't', 'r', 'e', 'o', 'fail')]).count('<failure'))\n"
        "print(len(r.write_report(%r, [c.make_result('a', 'node', 's', 't', 'r', 'e', 'o', 'fail')])))\n"
    ) % (str(tmp_path), str(capture), str(tmp_path / "report"))
    out = subprocess.run([py38, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["ok", "(65,", "13)", "1", "4"]
    assert "FAILED" in (tmp_path / "report" / "verify.html").read_text()


# ------------------------------------------------ kubelab_verify_cluster
class LoggingWeb:
    """Two loopback "pods" behind one port, picked in turn, each with an
    nginx-style access log (what pods/log would return)."""

    def __init__(self):
        self.logs = {"nginx-a": [], "nginx-b": []}
        self.turn = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                pod = sorted(outer.logs)[outer.turn % 2]
                outer.turn += 1
                outer.logs[pod].append('127.0.0.1 - - [02/Dec/2026:06:00:00 +0000] "GET %s HTTP/1.1" 200 31 '
                                       '"-" "kubelab-verify" "-"' % self.path)
                data = b"<title>Welcome to nginx!</title>"
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.port = self.server.server_address[1]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class FakeCore:
    """CoreV1Api as far as KubeLogSource uses it."""

    def __init__(self, web):
        self.web = web

    def read_namespaced_pod_log(self, pod, namespace, **kwargs):
        return "\n".join(self.web.logs[pod])


def cluster_targets(port):
    return {"namespace": "test", "cluster_domain": "cluster.local",
            "cluster_dns": {"name": "kube-dns", "namespace": "kube-system", "cluster_ip": "10.96.0.10",
                            "ports": [{"name": "dns-tcp", "port": 53, "protocol": "TCP"}]},
            "nodes": [{"name": "w1", "addresses": ["127.0.0.1"]}],
            "services": [{"name": "nginx-svc", "namespace": "test", "type": "ClusterIP", "cluster_ip": "10.105.132.127",
                          "external_ips": ["127.0.0.1"], "ports": [{"port": port, "protocol": "TCP", "node_port": None}],
                          "endpoints": [{"ip": "10.244.1.15", "pod": "nginx-a", "node": "w1", "ready": True},
                                        {"ip": "10.244.2.14", "pod": "nginx-b", "node": "w2", "ready": True}],
                          "backends": ["nginx-a", "nginx-b"]}],
            "pods": [{"name": "nginx-a", "ip": "10.244.1.15", "node": "w1", "ready": True, "host_network": False},
                     {"name": "busybox-1", "ip": "10.244.1.16", "node": "w1", "ready": True, "host_network": False}],
            "probe_pod": {"name": "busybox-1", "namespace": "test", "container": "busybox", "node": "w1"}}


class PodExec(c.KubeExecExecutor):
    def __init__(self, core, namespace, pod, container=None):
        self.calls = []

    def run(self, argv, timeout):
        if argv[0] == "nslookup":
            return c.ExecResult("Server:\t\t10.96.0.10\nAddress:\t10.96.0.10:53\n\nName:\tnginx-svc.test.svc.cluster.local\n"
                                "Address: 10.105.132.127\n\n", "", 0, None, False)
        if argv[0] == "ping":
            return c.ExecResult("PING x\n", "ping: permission denied (are you root?)\n", 1, None, False)
        if argv[0] == "cat":
            return c.ExecResult("CapEff:\t00000000a80425fb\n", "", 0, None, False)
        return c.ExecResult("Connected to %s\n" % argv[2].split()[2], "", 0, None, False)


def fake_api(monkeypatch, module, web, waiting=()):
    monkeypatch.setattr(module, "kube_api_client", lambda path, ctx: object())
    if hasattr(module, "k8s_client"):
        monkeypatch.setattr(module.k8s_client, "CoreV1Api", lambda api: FakeCore(web))
    if hasattr(module, "KubeExecExecutor"):
        monkeypatch.setattr(module, "KubeExecExecutor", PodExec)
    if hasattr(module, "discover_targets"):
        monkeypatch.setattr(module, "discover_targets",
                            lambda api, *args, **kwargs: (cluster_targets(web.port), 0.1, list(waiting)))
    if hasattr(module, "discover"):  # kubelab_verify_targets
        monkeypatch.setattr(module, "discover", lambda params: (cluster_targets(web.port), 0.1, list(waiting)))


def comparable(results):
    keep = ("id", "stage", "source", "target", "expected", "verdict", "reason")
    return [{k: r[k] for k in keep} for r in results]


def test_verify_cluster_gives_the_single_modules_results_in_one_run(monkeypatch, capsys):
    """Same checks, same verdicts and messages as kubelab_http_probe +
    kubelab_spread + kubelab_pod_probe, from one module process."""
    web = LoggingWeb()
    try:
        for module in (kubelab_verify_cluster, kubelab_spread, kubelab_pod_probe):
            fake_api(monkeypatch, module, web)
        common = {"kubeconfig": "/k", "attempts": 1, "delay": 0}
        rc, one = run(kubelab_verify_cluster, dict(common, spread_log_wait=2.0,
                                                    node_crio_capabilities={"w1": ["CHOWN", "NET_RAW"]}), capsys)
        targets = one["targets"]
        rc_h, http = run(kubelab_http_probe, {"targets": targets, "attempts": 1, "delay": 0,
                                              "fail_on_check_failure": False}, capsys)
        rc_s, spread = run(kubelab_spread, {"kubeconfig": "/k", "targets": targets, "log_wait": 2.0,
                                            "fail_on_check_failure": False}, capsys)
        rc_p, pod = run(kubelab_pod_probe, dict(common, targets=targets, fail_on_check_failure=False,
                                                node_crio_capabilities={"w1": ["CHOWN", "NET_RAW"]}), capsys)
    finally:
        web.close()
    assert (rc, rc_h, rc_s, rc_p) == (0, 0, 0, 0), one
    assert one["ready"] is True and one["changed"] is False
    assert comparable(one["results"]) == comparable(http["results"] + spread["results"] + pod["results"])
    by_id = {r["id"]: r for r in one["results"]}
    assert by_id["spread:nginx-svc"]["verdict"] == "pass", by_id["spread:nginx-svc"]["observed"]
    assert by_id["ping:nginx-a"]["verdict"] == "fail"
    assert "the pod predates the CRI-O change: recreate it" in by_id["ping:nginx-a"]["observed"]
    assert one["failed_checks"] == ["ping:nginx-a"]
    assert set(one["timings"]) == {"targets", "http", "spread", "pod"}


def test_verify_cluster_not_ready_fails_with_the_targets_message_and_runs_no_check(monkeypatch, capsys):
    web = LoggingWeb()
    try:
        for module in (kubelab_verify_cluster, kubelab_verify_targets):
            fake_api(monkeypatch, module, web, waiting=["deployment nginx: 1/2 ready"])
        rc, out = run(kubelab_verify_cluster, {"kubeconfig": "/k", "wait_timeout": 0}, capsys)
        rc_t, alone = run(kubelab_verify_targets, {"kubeconfig": "/k", "wait_timeout": 0}, capsys)
    finally:
        web.close()
    assert rc == rc_t == 1
    assert out["msg"] == alone["msg"]
    assert out["msg"].startswith("not ready after 0s in namespace test: deployment nginx: 1/2 ready (expected:")
    assert out["ready"] is False and out["waiting"] == ["deployment nginx: 1/2 ready"]
    assert "results" not in out and web.turn == 0  # not one request was sent


def test_verify_cluster_api_error_names_namespace_and_kubeconfig(capsys, tmp_path):
    kubeconfig = tmp_path / "missing.conf"
    rc, out = run(kubelab_verify_cluster, {"kubeconfig": str(kubeconfig)}, capsys)
    assert rc == 1 and out["ready"] is False
    assert out["msg"].startswith("cannot read the cluster objects of namespace test with %s" % kubeconfig)


def test_verify_cluster_without_a_probe_pod_says_the_in_pod_checks_did_not_run(monkeypatch, capsys):
    web = LoggingWeb()
    try:
        fake_api(monkeypatch, kubelab_verify_cluster, web)
        targets = cluster_targets(web.port)
        targets["probe_pod"] = None
        monkeypatch.setattr(kubelab_verify_cluster, "discover_targets", lambda api, *a, **k: (targets, 0.0, []))
        rc, out = run(kubelab_verify_cluster, {"kubeconfig": "/k", "probe_selector": {}, "checks": ["pod"]}, capsys)
    finally:
        web.close()
    assert rc == 0
    assert [(r["id"], r["verdict"]) for r in out["results"]] == [("pod:*", "skip")]
    assert "probe_selector is empty" in out["results"][0]["reason"]


def test_the_verify_role_imports_the_kubernetes_client_in_one_module_run_at_most():
    """Issue 16: each module run that imports the kubernetes client pays
    seconds on a loaded machine. Count the verify role's tasks whose module
    imports it (a loop would run it once per item)."""
    from pathlib import Path

    import yaml

    root = Path(__file__).resolve().parents[2]
    keywords = {"name", "register", "when", "loop", "delegate_to", "failed_when", "changed_when", "check_mode",
                "args", "vars", "tags", "block", "rescue", "always", "notify", "no_log", "run_once", "environment",
                "ignore_errors", "become", "retries", "delay", "until", "loop_control"}
    heavy = []

    def walk(tasks, where):
        for task in tasks or []:
            for key in ("block", "rescue", "always"):
                walk(task.get(key), where)
            for action in set(task) - keywords:
                source = root / "library" / (action.split(".")[-1] + ".py")
                if source.is_file():
                    text = source.read_text()
                    if "from kubernetes" in text or "import kubernetes" in text:
                        heavy.append((where, task.get("name"), "loop" in task))

    for path in sorted((root / "roles" / "verify" / "tasks").glob("*.yml")):
        walk(yaml.safe_load(path.read_text()), path.name)
    assert len(heavy) <= 1, heavy
    assert not any(looped for _w, _n, looped in heavy), heavy


def test_verify_cluster_impossible_spread_settings_are_a_failed_result_not_a_lost_report(monkeypatch, capsys):
    """Review item 3: spread_plan's error failed the module with ready=True
    and no results, so the role wrote no report."""
    web = LoggingWeb()
    try:
        fake_api(monkeypatch, kubelab_verify_cluster, web)
        rc, out = run(kubelab_verify_cluster, {"kubeconfig": "/k", "attempts": 1, "delay": 0, "spread_log_wait": 0.5,
                                               "spread_min_fair_fraction": 0.9, "checks": ["http", "spread"]}, capsys)
    finally:
        web.close()
    assert rc == 0 and out["ready"] is True, out
    spread = [r for r in out["results"] if r["stage"] == "spread"]
    assert spread and all(r["verdict"] == "fail" and r["reason"] == "impossible_settings" for r in spread)
    assert "min_fair_fraction 0.9" in spread[0]["observed"]
    assert any(r["stage"] == "external" and r["verdict"] == "pass" for r in out["results"])
    assert set(out["failed_checks"]) == {r["id"] for r in spread}


@pytest.mark.parametrize("group, function", [("http", "check_http"), ("spread", "check_spread"), ("pod", "PodProbe")])
def test_verify_cluster_any_error_of_a_group_is_its_failed_result_naming_it(monkeypatch, capsys, group, function):
    web = LoggingWeb()

    def boom(*args, **kwargs):
        raise RuntimeError("the API said 500")

    try:
        fake_api(monkeypatch, kubelab_verify_cluster, web)
        monkeypatch.setattr(kubelab_verify_cluster, function, boom)
        rc, out = run(kubelab_verify_cluster, {"kubeconfig": "/k", "attempts": 1, "delay": 0, "spread_log_wait": 0.5,
                                               "node_crio_capabilities": {"w1": ["CHOWN", "NET_RAW"]}}, capsys)
    finally:
        web.close()
    assert rc == 0 and out["ready"] is True, out
    stage = "external" if group == "http" else group
    by_id = {r["id"]: r for r in out["results"]}
    failed = by_id["%s:*" % stage]
    assert failed["verdict"] == "fail" and failed["reason"] == "error" and failed["stage"] == stage
    assert failed["observed"] == ("the %s checks of namespace test could not run: RuntimeError: the API said 500"
                                  % group)
    # the other groups still ran
    assert {r["stage"] for r in out["results"]} == {"external", "spread", "pod"}
    assert "%s:*" % stage in out["failed_checks"]
