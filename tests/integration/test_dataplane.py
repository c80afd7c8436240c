"""The verification checks over a real namespace data plane (root).

Same check functions as the modules; only the transport into the probe pod
(nsenter instead of the API's exec) and the object list (the fixture's
``targets()`` instead of ``targets_from_objects``) differ. Each fault the
verify stage must catch is injected for real: no nginx, an nftables DNAT to
one pod only, another page, a missing DNS record, a Service without
endpoints (kube-proxy reject), a pod without CAP_NET_RAW.
"""

from __future__ import annotations

import json
import os
import subprocess
import xml.etree.ElementTree as ET

import pytest

from ansible.module_utils import kubelab_checks as checks
from ansible.module_utils.kubelab_report import summarize, write_report
from fixtures_dataplane import (  # noqa: F401
    NODES, PODS, SILENT_IP, DataPlane, dataplane, dataplane_factory, netns_list, role_trusted_zone,
)

pytestmark = [pytest.mark.root, pytest.mark.netns]

FAST = {"attempts": 3, "delay": 0.05}


def by_id(results):
    return {r["id"]: r for r in results}


def run_all(plane, net_raw=True, crio=None):
    targets = plane.targets(crio_capabilities=crio)
    http = plane.controller(checks.check_http, targets, timeout=2.0, **FAST)
    spread = plane.controller(checks.check_spread, targets, plane.log_source(), log_wait=2.0)
    caps = {n["name"]: n["crio_default_capabilities"] for n in targets["nodes"]}
    pod = checks.PodProbe(plane.pod_executor(net_raw=net_raw), targets, timeout=2, node_crio_capabilities=caps,
                          **FAST).run()
    return by_id(http), by_id(spread), by_id(pod)


def failing(results):
    return sorted(i for i, r in results.items() if r["verdict"] == "fail")


def test_healthy_lab_passes_every_check(dataplane, tmp_path):
    http, spread, pod = run_all(dataplane)
    # 3 services x 2 externalIPs + 2 nodePort services x 2 nodes
    assert len(http) == 10
    assert len(spread) == 3
    # 3 pings (2 nginx + dns pod), 4 TCP (3 services + kube-dns), 6 nslookups
    assert len([i for i in pod if i.startswith("ping:")]) == 3
    assert sorted(i for i in pod if i.startswith("tcp:")) == [
        "tcp:kube-dns.kube-system:53", "tcp:nginx-svc-lb:8080", "tcp:nginx-svc-np:8081", "tcp:nginx-svc:80"]
    assert len([i for i in pod if i.startswith("dns:")]) == 6
    everything = {**http, **spread, **pod}
    assert failing(everything) == [], [everything[i]["observed"] for i in failing(everything)]
    assert all(r["attempts"] == 1 for r in http.values())
    for r in spread.values():
        counts = r["details"]["counts"]
        assert sorted(counts) == sorted(PODS[k][2] for k in ("pa", "pb"))
        assert sum(counts.values()) == r["details"]["requests"] == 65
        assert min(counts.values()) >= r["details"]["threshold"] == 13
    assert pod["dns:nginx-svc"]["exit_code"] == 1  # busybox 1.35 search-domain NXDOMAIN noise
    assert "10.105.132.127" in pod["dns:nginx-svc"]["observed"]
    paths = write_report(str(tmp_path), list(everything.values()))
    doc = json.loads(open(paths["json"]).read())
    assert doc["summary"]["ok"] is True and doc["summary"]["pass"] == len(everything)
    assert ET.parse(paths["junit"]).getroot().get("failures") == "0"


def _nft_set(plane, node, name):
    out = subprocess.run(["ip", "netns", "exec", plane.ns[node], "nft", "-j", "list", "set", "inet",
                          "kubelab_firewalld", name], capture_output=True, text=True, check=True).stdout
    elems = [o["set"].get("elem", []) for o in json.loads(out)["nftables"] if "set" in o][0]
    return sorted(e if isinstance(e, str) else "%s/%s" % (e["prefix"]["addr"], e["prefix"]["len"]) for e in elems)


def test_nodes_forward_like_firewalld_0_9_with_the_roles_trusted_zone(dataplane):
    """Every node's forward path: firewalld 0.9's chain, trusted zone = node_prep's defaults."""
    sources, interfaces = role_trusted_zone()
    assert sources, "node_prep binds no source to firewalld's trusted zone by default"
    for node in NODES:
        assert _nft_set(dataplane, node, "trusted_src4") == sorted(sources)
        assert _nft_set(dataplane, node, "trusted_ifaces") == sorted(interfaces)
        chain = subprocess.run(["ip", "netns", "exec", dataplane.ns[node], "nft", "list", "chain", "inet",
                                "kubelab_firewalld", "filter_FORWARD"], capture_output=True, text=True,
                               check=True).stdout
        assert chain.strip().splitlines()[-3].strip() == "reject with icmpx admin-prohibited"
    # and with that zone, everything passes (as test_healthy_lab_passes_every_check shows in full)
    _http, _spread, pod = run_all(dataplane)
    assert pod["ping:" + PODS["pb"][2]]["verdict"] == "pass"
    assert pod["dns:nginx-svc-lb"]["verdict"] == "pass"


@pytest.mark.slow
def test_without_the_pod_network_in_the_trusted_zone_forwarded_pod_traffic_is_rejected(dataplane_factory):
    """firewalld 0.9 on nodes where node_prep bound nothing to the trusted zone (2f9e5a8's behaviour).

    Pod to pod (also on one node: routed through the node, as cni0 traffic
    through br_netfilter), DNS to the CoreDNS pod, TCP to Services: all
    rejected. NodePort/externalIP requests that kube-proxy sends to the local
    pod pass (``ct status dnat accept``); those sent on to the other node's
    pod are rejected there, so about half of the requests fail.
    """
    plane = dataplane_factory(trusted_sources=[], trusted_interfaces=[])
    for node in NODES:
        assert _nft_set(plane, node, "trusted_src4") == []
    targets = plane.targets()
    # short timeouts: what is rejected is reported as a timeout or "no route to host" either way
    spread = by_id(plane.controller(checks.check_spread, targets, plane.log_source(), log_wait=1.0, timeout=1.0,
                                    workers=16))
    pod = by_id(checks.PodProbe(plane.pod_executor(), targets, timeout=1, attempts=1, delay=0.0).run())
    for key in ("pa", "pb", "dns"):
        assert pod["ping:" + PODS[key][2]]["verdict"] == "fail", key
    assert all(pod[i]["verdict"] == "fail" for i in pod if i.startswith(("dns:", "tcp:"))), failing(pod)
    for r in spread.values():
        assert r["verdict"] == "fail"
        failed, requests = r["details"]["failed_requests"], r["details"]["requests"]
        assert 0 < failed < requests, (failed, requests)  # the local-pod share still answers
        assert all(n > 0 for n in r["details"]["counts"].values())


def test_dead_endpoint_is_caught(dataplane_factory):
    plane = dataplane_factory("dead_endpoint")
    _http, spread, _pod = run_all(plane)
    dead = PODS["pb"][2]
    for r in spread.values():
        assert r["verdict"] == "fail"
        assert r["details"]["counts"][dead] == 0
        assert r["details"]["failed_requests"] > 0
        assert dead in r["observed"]


def test_service_selecting_one_pod_only_is_caught(dataplane_factory):
    plane = dataplane_factory("one_pod_selected")
    http, spread, pod = run_all(plane)
    assert failing(http) == []  # every answer is right; only the spread shows it
    assert failing(pod) == []
    for r in spread.values():
        assert r["verdict"] == "fail"
        assert r["details"]["counts"] == {PODS["pa"][2]: 65, PODS["pb"][2]: 0}
        assert "below 13 of 65 requests: %s (0)" % PODS["pb"][2] in r["observed"]


def test_wrong_body_on_one_pod_fails_spread(dataplane_factory):
    plane = dataplane_factory("wrong_body")
    _http, spread, _pod = run_all(plane)
    for r in spread.values():
        assert r["verdict"] == "fail"
        assert "wrong_body" in r["observed"]


def test_wrong_body_everywhere_fails_every_http_check_without_retry(dataplane_factory):
    plane = dataplane_factory("wrong_body_all")
    http, _spread, _pod = run_all(plane)
    assert len(failing(http)) == len(http) == 10
    for r in http.values():
        assert r["attempts"] == 1 and r["reason"] == "wrong_body"
        assert r["details"]["status"] == 200 and "pattern NOT found" in r["observed"]


def test_nxdomain_is_a_hard_failure(dataplane_factory):
    plane = dataplane_factory("nxdomain")
    _http, _spread, pod = run_all(plane)
    for check in ("dns:nginx-svc", "dns:nginx-svc.test.svc.cluster.local"):
        assert pod[check]["verdict"] == "fail"
        assert pod[check]["reason"] == "nxdomain"
        assert pod[check]["attempts"] == 1
    assert pod["tcp:nginx-svc:80"]["reason"] == "bad_address"
    assert pod["dns:nginx-svc-lb"]["verdict"] == "pass"


def test_ping_without_net_raw_is_permission_denied_not_timeout(dataplane):
    crio = ["CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "SETGID", "SETUID", "SETPCAP", "NET_BIND_SERVICE", "KILL"]
    _http, _spread, pod = run_all(dataplane, net_raw=False, crio=crio)
    pings = {i: r for i, r in pod.items() if i.startswith("ping:")}
    assert pings
    for r in pings.values():
        assert r["verdict"] == "fail" and r["reason"] == "permission_denied"
        assert r["attempts"] == 1
        assert r["details"]["net_raw"] is False
        assert "NET_RAW bit 13 = 0" in r["observed"]
        assert "NET_RAW ABSENT" in r["observed"] and "worker01" in r["observed"]
        assert "permission denied" in r["stderr"]
    # with NET_RAW the same pings pass
    _http, _spread, pod = run_all(dataplane, net_raw=True)
    assert all(pod[i]["verdict"] == "pass" for i in pings)


def test_pod_without_net_raw_on_a_fixed_node_is_told_to_be_recreated(dataplane):
    _http, _spread, pod = run_all(dataplane, net_raw=False)  # CRI-O has NET_RAW (default targets)
    r = pod["ping:" + PODS["pa"][2]]
    assert r["reason"] == "permission_denied"
    assert "recreate it" in r["observed"]


def test_closed_service_port_is_refused(dataplane_factory):
    plane = dataplane_factory("closed_port")
    http, spread, pod = run_all(plane)
    r = pod["tcp:nginx-svc-np:8081"]
    assert r["verdict"] == "fail" and r["reason"] == "refused" and r["attempts"] == 1
    assert "Connection refused" in r["stderr"]
    assert pod["tcp:nginx-svc:80"]["verdict"] == "pass"
    assert sorted(i for i in failing(http)) == sorted(i for i in http if i.startswith("http:nginx-svc-np:"))
    assert spread["spread:nginx-svc-np"]["verdict"] == "fail"
    assert spread["spread:nginx-svc"]["verdict"] == "pass"


def test_timeouts_are_retried_then_fail(dataplane):
    targets = dataplane.targets()
    targets["pods"].append({"name": "silent", "namespace": "test", "ip": SILENT_IP, "node": "worker02",
                            "ready": True, "host_network": False, "labels": {}})
    probe = checks.PodProbe(dataplane.pod_executor(), targets, attempts=2, delay=0.0, timeout=1)
    r = probe.ping(targets["pods"][-1])
    assert r["verdict"] == "fail" and r["reason"] == "timeout" and r["attempts"] == 2
    r = probe.tcp(SILENT_IP, 80)
    assert r["verdict"] == "fail" and r["reason"] == "timeout" and r["attempts"] == 2


def test_failed_run_report_names_the_failures(dataplane_factory, tmp_path):
    plane = dataplane_factory("nxdomain")
    http, spread, pod = run_all(plane)
    results = list({**http, **spread, **pod}.values())
    summary = summarize(results)
    assert not summary["ok"]
    assert "dns:nginx-svc" in summary["failed_ids"]
    paths = write_report(str(tmp_path), results)
    root = ET.parse(paths["junit"]).getroot()
    failed_cases = [c.get("name") for c in root.iter("testcase") if c.find("failure") is not None]
    assert sorted(failed_cases) == sorted(summary["failed_ids"])
    assert "FAILED dns:nginx-svc:" in open(paths["table"]).read()


def test_http_probe_module_runs_over_real_sockets(dataplane, capsys):
    """The module's own main() from the controller namespace."""
    from ansible.module_utils.testing import patch_module_args

    import kubelab_http_probe

    def run():
        with patch_module_args({"targets": dataplane.targets(), "fail_on_check_failure": True}):
            try:
                kubelab_http_probe.main()
            except SystemExit as exc:
                return exc.code
        return None

    assert dataplane.controller(run) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["changed"] is False and out["failed_checks"] == []
    assert len(out["results"]) == 10


def test_setup_and_teardown_are_fast_and_leave_nothing():
    if os.geteuid() != 0:
        pytest.skip("needs root")
    plane = DataPlane().up()
    names = list(plane.created_ns)
    pids = [proc.pid for proc, _log in plane.procs]
    etc = plane.netns_etc
    plane.down()
    # ~0.4 s / ~0.06 s on an idle 2-core host; generous bounds for a loaded one
    assert plane.setup_seconds < 10.0, plane.setup_seconds
    assert plane.teardown_seconds < 2.0, plane.teardown_seconds
    assert not set(names) & set(netns_list())
    assert not etc.exists()
    for pid in pids:
        assert not os.path.exists(f"/proc/{pid}") or "zombie" in open(f"/proc/{pid}/status").read().lower()
    out = subprocess.run(["pgrep", "-f", plane.prefix], capture_output=True, text=True).stdout
    assert out.strip() == ""


def test_teardown_after_a_failed_setup_leaves_nothing(monkeypatch):
    if os.geteuid() != 0:
        pytest.skip("needs root")
    plane = DataPlane()
    monkeypatch.setattr(plane, "_start_dns", lambda: (_ for _ in ()).throw(RuntimeError("injected")))
    with pytest.raises(RuntimeError, match="injected"):
        plane.up()
    assert not [n for n in netns_list() if n.startswith(plane.prefix + "-")]
    assert not (plane.netns_etc and plane.netns_etc.exists())
