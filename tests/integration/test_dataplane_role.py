"""The verify stage end to end: ansible-playbook playbooks/verify.yml.

The objects live in the Kubernetes API emulator (kapi); the addresses they
name are served by the namespace data plane, which the host namespace joins
(attach_host) so that ansible-playbook and the modules run unchanged on the
host as on a controller. kapi forwards pods/exec and pods/log to the kubelet
of the pod's node (Node InternalIP, kubeletEndpoint port): here a fake
kubelet (tests/fake_kubelet.py) in each node's namespace, which enters the
busybox "pod" and reads the nginx "pods'" access logs. So every check of the
write-up runs through the verify stage exactly as on a cluster: HTTP matrix,
spread (markers counted in the pod logs), ping/TCP/DNS from busybox. Each
fault of the data plane must fail the play with the right check and reason.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from kubernetes import client

from fake_kubelet import FakeKubelet
from fixtures_dataplane import NODES, PODS, dataplane, dataplane_factory, run_in_netns  # noqa: F401
from fixtures_kapi import kube_api  # noqa: F401

pytestmark = [pytest.mark.root, pytest.mark.netns, pytest.mark.slow]
ROOT = Path(__file__).resolve().parent.parent.parent
KUBELET_PORT = 10250


def load_objects(api, targets):
    """Create in kapi the objects that describe the data plane."""
    core, apps, disc = client.CoreV1Api(api), client.AppsV1Api(api), client.DiscoveryV1Api(api)
    core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "test"}})
    for node in targets["nodes"]:
        core.create_node({"apiVersion": "v1", "kind": "Node", "metadata": {"name": node["name"]},
                          "status": {"addresses": [{"type": "InternalIP", "address": a} for a in node["addresses"]],
                                     "daemonEndpoints": {"kubeletEndpoint": {"Port": KUBELET_PORT}}}})
    dns = targets["cluster_dns"]
    core.create_namespaced_service(dns["namespace"], {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": dns["name"], "namespace": dns["namespace"]},
        "spec": {"clusterIP": dns["cluster_ip"], "ports": dns["ports"]}})
    for pod in targets["pods"]:
        if pod["namespace"] != "test":
            continue
        core.create_namespaced_pod("test", {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": pod["name"], "labels": pod["labels"]},
            "spec": {"nodeName": pod["node"], "containers": [{"name": pod["labels"]["app"], "image": "x"}]}})
        core.patch_namespaced_pod_status(pod["name"], "test", {"status": {
            "phase": "Running", "podIP": pod["ip"], "conditions": [{"type": "Ready", "status": "True"}]}})
    for app, replicas in (("nginx", 2), ("busybox", 1)):
        apps.create_namespaced_deployment("test", {
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": app},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": app}},
                     "template": {"metadata": {"labels": {"app": app}},
                                  "spec": {"containers": [{"name": app, "image": "x"}]}}}})
        apps.patch_namespaced_deployment_status(app, "test", {"status": {"readyReplicas": replicas}})
    for svc in targets["services"]:
        port = svc["ports"][0]
        spec_port = {"name": "http", "port": port["port"], "targetPort": 80, "protocol": "TCP"}
        if port["node_port"]:
            spec_port["nodePort"] = port["node_port"]
        core.create_namespaced_service("test", {
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": svc["name"]},
            "spec": {"type": svc["type"], "clusterIP": svc["cluster_ip"], "selector": {"app": "nginx"},
                     "externalIPs": svc["external_ips"], "ports": [spec_port]}})
        disc.create_namespaced_endpoint_slice("test", {
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
            "metadata": {"name": svc["name"] + "-1", "labels": {"kubernetes.io/service-name": svc["name"]}},
            "endpoints": [{"addresses": [e["ip"]], "nodeName": e["node"], "conditions": {"ready": True},
                           "targetRef": {"kind": "Pod", "name": e["pod"], "namespace": "test"}}
                          for e in svc["endpoints"]]})


def start_kubelets(plane, net_raw=True):
    """A fake kubelet on each node's address, inside the node's namespace."""
    kubelets = {}
    logs = plane.log_source().paths
    for node, address in NODES.items():
        execs, pod_logs = {}, {}
        for key, (pod_node, _ip, name, role) in PODS.items():
            if pod_node != node or role == "dns":
                continue
            if role == "busybox":
                execs[("test", name)] = plane.pod_executor(net_raw=net_raw)
            else:
                pod_logs[("test", name)] = logs[name]
        kubelet = FakeKubelet(execs, pod_logs)
        run_in_netns(plane.ns[node], kubelet.bind, address, KUBELET_PORT)
        kubelets[node] = kubelet
    return kubelets


def run_verify(plane, kube_api, tmp_path, net_raw=True):
    plane.attach_host()
    kubelets = start_kubelets(plane, net_raw=net_raw)
    targets = plane.targets()
    load_objects(kube_api.client(), targets)
    inventory = tmp_path / "hosts.yml"
    inventory.write_text("all:\n  children:\n    control_plane:\n      hosts: {}\n    workers:\n      hosts: {}\n")
    report_dir = tmp_path / "report"
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_LOCALHOST_WARNING="false",
               ANSIBLE_INVENTORY_UNPARSED_WARNING="false")
    cmd = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory),
           str(ROOT / "playbooks" / "verify.yml"),
           "-e", f"kubelab_admin_kubeconfig={kube_api.kubeconfig}", "-e", f"verify_report_dir={report_dir}",
           "-e", "ansible_python_interpreter=" + sys.executable,
           "-e", '{"verify_wait_timeout": 10, "verify_attempts": 1, "verify_spread_log_wait": 5}']
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    finally:
        for kubelet in kubelets.values():
            kubelet.stop()
    assert (report_dir / "verify.json").exists(), proc.stdout[-5000:] + proc.stderr[-2000:]
    doc = json.loads((report_dir / "verify.json").read_text())
    return proc, doc, {r["id"]: r for r in doc["results"]}, kubelets


def by_kind(results, *kinds):
    return {i: r for i, r in results.items() if i.split(":")[0] in kinds}


def test_verify_playbook_end_to_end(dataplane, kube_api, tmp_path):
    proc, doc, results, kubelets = run_verify(dataplane, kube_api, tmp_path)
    assert proc.returncode == 0, ({k: v.requests[:5] for k, v in kubelets.items()}, proc.stdout[-1500:])
    assert len(by_kind(results, "http")) == 10
    assert len(by_kind(results, "spread")) == 3
    assert len(by_kind(results, "ping", "tcp", "dns")) == 2 + 4 + 6  # the DNS pod is not in kapi's test namespace
    assert not any(i.startswith("node:") for i in results)  # no node in this inventory
    failed = {i: r["observed"] for i, r in results.items() if r["verdict"] != "pass"}
    assert not failed
    assert doc["summary"]["pass"] == 25 and doc["summary"]["fail"] == 0
    for r in by_kind(results, "spread").values():
        assert r["details"]["failed_requests"] == 0 and r["details"]["counted"] == r["details"]["answered"]
    # the checks really went through the kubelets: exec on n1 (busybox), logs on both nodes
    assert any(q.startswith("POST /exec/test/" + PODS["bb"][2] + "/busybox") for q in kubelets["n1"].requests)
    for node, key in (("n1", "pa"), ("n2", "pb")):
        assert any(q.startswith("GET /containerLogs/test/" + PODS[key][2] + "/nginx") for q in kubelets[node].requests)
    assert (tmp_path / "report" / "verify-junit.xml").exists()


def test_verify_playbook_without_net_raw_fails_ping_with_the_reason(dataplane, kube_api, tmp_path):
    proc, doc, results, _ = run_verify(dataplane, kube_api, tmp_path, net_raw=False)
    assert proc.returncode == 2
    ping = by_kind(results, "ping")
    assert len(ping) == 2
    for r in ping.values():
        assert r["verdict"] == "fail" and r["reason"] == "permission_denied", r
        assert "NET_RAW bit 13 = 0" in r["observed"]
    others = {i: r["verdict"] for i, r in results.items() if i not in ping}
    assert set(others.values()) == {"pass"}, others


@pytest.mark.parametrize("fault, failing, reason", [
    # no nginx in pod pb: its share of every Service's requests fails
    ("dead_endpoint", "spread", None),
    # the Services select only pa: every request answered, all by one pod
    ("one_pod_selected", "spread", None),
    # the DNS server has no nginx-svc names
    ("nxdomain", "dns", "nxdomain"),
])
def test_verify_playbook_catches_each_fault(dataplane_factory, kube_api, tmp_path, fault, failing, reason):
    plane = dataplane_factory(fault)
    proc, doc, results, _ = run_verify(plane, kube_api, tmp_path)
    assert proc.returncode == 2, proc.stdout[-3000:]
    failed = {i: r for i, r in results.items() if r["verdict"] != "pass"}
    assert failed and all(i.startswith(failing + ":") or i.startswith("http:") or i.startswith("tcp:")
                          for i in failed), {i: r["observed"] for i, r in failed.items()}
    kinds = by_kind(failed, failing)
    assert kinds, {i: r["observed"] for i, r in failed.items()}
    if reason:
        assert {r["reason"] for r in kinds.values()} == {reason}, kinds
    if fault == "one_pod_selected":
        # every request answered, none by the pod the Services do not select
        assert not by_kind(failed, "http", "tcp")
        for r in kinds.values():
            assert r["details"]["failed_requests"] == 0
            # pb, which the Services do not select, answered none of them
            assert not r["details"]["counts"].get(PODS["pb"][2]), r["details"]
    if fault == "nxdomain":
        nginx_svc = {i for i in results if i in ("dns:nginx-svc", "dns:nginx-svc.test.svc.cluster.local")}
        assert len(nginx_svc) == 2 and set(kinds) == nginx_svc, sorted(kinds)
    assert "checks failed" in proc.stdout
