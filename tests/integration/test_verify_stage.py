"""The whole verify stage (ansible-playbook playbooks/verify.yml) against the
Kubernetes API emulator, loopback only (tests/fixtures_verify_stage.py).

Proves on the real role and modules: the report files are written beside
each other (JSON, JUnit, table, HTML), the node x nodePort HTTP checks pass
through the loopback "nginx" (no externalIPs here: see the fixture), what kapi cannot do (pods/log, pods/exec: no kubelet) is
reported as failed checks rather than crashing the stage, the kubernetes
client is imported by one module process only, and workloads that never
become ready give one readiness failure and the data-plane checks listed
as not run with the reason, without a single request sent."""

from __future__ import annotations

import json
import random

import pytest

from fixtures_kapi import KubeApi
from fixtures_verify_stage import (
    ROOT, LoopbackNginx, build_lab, kubernetes_import_counter, run_stage, stage_vars, write_inventory,
)

pytestmark = pytest.mark.slow


def stage(tmp_path, nginx_ready=2, unreachable=False, **extra):
    api = KubeApi(tmp_path).start()
    nginx = LoopbackNginx()
    try:
        build_lab(api.client(), nginx, rng=random.Random(7), nginx_ready=nginx_ready)
        env, imports = kubernetes_import_counter(tmp_path)
        result = run_stage(ROOT, write_inventory(tmp_path / "hosts.json", unreachable=unreachable),
                           stage_vars(api.kubeconfig, tmp_path / "artifacts", **extra), tmp_path, extra_env=env)
    finally:
        nginx.close()
        api.stop()
    result["imports"] = imports.read_text().splitlines() if imports.exists() else []
    result["hits"] = nginx.hits
    report = result["report_dir"] / "verify.json"
    assert report.exists(), result["stdout"][-3000:] + result["stderr"][-2000:]
    result["doc"] = json.loads(report.read_text())
    result["by_id"] = {r["id"]: r for r in result["doc"]["results"]}
    return result


def test_stage_against_the_emulator(tmp_path):
    r = stage(tmp_path)
    assert r["rc"] == 2  # checks failed: the assertion of the verify role fails the play
    names = sorted(p.name for p in r["report_dir"].iterdir())
    assert names == ["verify-junit.xml", "verify.html", "verify.json", "verify.txt"]
    by_id = r["by_id"]
    http = [x for x in by_id.values() if x["stage"] == "external"]
    assert len(http) == 4 and all(x["verdict"] == "pass" for x in http)  # 2 nodes x 2 nodePorts
    for name in ("nginx-svc-lb", "nginx-svc-np"):
        spread = by_id["spread:" + name]
        assert spread["verdict"] == "fail" and "log read errors" in spread["reason"]
        # two Services reachable from outside share the 1e-6 budget: 64 requests each
        assert spread["details"]["answered"] == spread["details"]["requests"] == 64
    assert by_id["spread:nginx-svc"]["verdict"] == "skip"
    pod = [x for x in by_id.values() if x["stage"] == "pod"]
    assert len(pod) == 12 and all(x["reason"] == "transport_error" for x in pod)
    observed = by_id["dns:nginx-svc"]["observed"]
    assert "error dialing backend" in observed and "connection refused" in observed
    assert {x["id"] for x in by_id.values() if x["stage"] == "node"} >= {"node:w2:crio-capabilities"}
    # one module process imported the kubernetes client, not one per module
    assert len(r["imports"]) == 1, r["imports"]
    assert "kubelab_verify_cluster" in r["imports"][0] or "AnsiballZ" in r["imports"][0]


def test_workloads_never_ready_give_one_readiness_failure_and_no_request(tmp_path):
    r = stage(tmp_path, nginx_ready=1)
    by_id = r["by_id"]
    readiness = by_id["readiness"]
    assert readiness["verdict"] == "fail"
    assert readiness["observed"].startswith("not ready after 0s in namespace test: deployment nginx: 1/2 ready")
    assert readiness["details"]["waiting"] == ["deployment nginx: 1/2 ready"]
    for group in ("external:*", "spread:*", "pod:*"):
        assert by_id[group]["verdict"] == "skip" and by_id[group]["reason"] == "the workloads were not ready"
    assert not any(x["stage"] in ("external", "spread", "pod") and x["verdict"] != "skip" for x in by_id.values())
    assert r["hits"] == 0


def test_an_unreachable_node_is_said_not_checked_and_fails_the_run(tmp_path):
    r = stage(tmp_path, unreachable=True)
    for check in ("crio-capabilities", "crio-active", "kubelet-active"):
        x = r["by_id"]["node:w3:%s" % check]
        assert x["verdict"] == "fail" and x["reason"] == "unreachable", x
        assert x["observed"].startswith("not checked: w3 was unreachable (")
    assert r["doc"]["summary"]["ok"] is False
    page = (r["report_dir"] / "verify.html").read_text()
    assert page.count("Not checked: <b>node w3</b> &mdash; w3 was unreachable (") == 1
    assert "node:w3:" not in page.split('id="node-table"')[1].split("</table>")[0]


def test_impossible_spread_settings_still_write_the_report(tmp_path):
    """Review item 3: 2 pods at min_fair_fraction 0.9 overflowed a float in
    spread_plan; the module failed with ready=True and no results, and
    data_plane.yml read the missing results: no report at all. Now each
    Service's spread check fails naming the settings, the other checks run."""
    r = stage(tmp_path, verify_spread_min_fair_fraction=0.9)
    assert r["rc"] == 2
    by_id = r["by_id"]
    for name in ("nginx-svc-lb", "nginx-svc-np"):
        spread = by_id["spread:" + name]
        assert spread["verdict"] == "fail" and spread["reason"] == "impossible_settings"
        assert "with 2 pods and min_fair_fraction 0.9" in spread["observed"]
    http = [x for x in by_id.values() if x["stage"] == "external"]
    assert len(http) == 4 and all(x["verdict"] == "pass" for x in http)
