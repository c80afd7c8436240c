"""The verify stage end to end: ansible-playbook playbooks/verify.yml.

The objects live in the Kubernetes API emulator (kapi); the addresses they
name are served by the namespace data plane, which the host namespace joins
(attach_host) so that ansible-playbook and the modules run unchanged on the
host as on a controller. kapi has no kubelet, so pods/log and pods/exec
answer 405: the spread and in-pod checks must FAIL and say why (the play
fails naming them), while the node-independent HTTP matrix must PASS. This
proves the plumbing (discovery from objects -> probes -> report -> verdict);
the exec and log paths themselves are proven by the unit tests (fake exec
stream) and test_dataplane.py (real logs, real busybox).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from kubernetes import client

from fixtures_dataplane import dataplane, dataplane_factory  # noqa: F401
from fixtures_kapi import kube_api  # noqa: F401

pytestmark = [pytest.mark.root, pytest.mark.netns, pytest.mark.slow]
ROOT = Path(__file__).resolve().parent.parent.parent


def load_objects(api, targets):
    """Create in kapi the objects that describe the data plane."""
    core, apps, disc = client.CoreV1Api(api), client.AppsV1Api(api), client.DiscoveryV1Api(api)
    core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "test"}})
    for node in targets["nodes"]:
        core.create_node({"apiVersion": "v1", "kind": "Node", "metadata": {"name": node["name"]},
                          "status": {"addresses": [{"type": "InternalIP", "address": a} for a in node["addresses"]]}})
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


def test_verify_playbook_end_to_end(dataplane, kube_api, tmp_path):
    dataplane.attach_host()
    targets = dataplane.targets()
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
           "-e", '{"verify_wait_timeout": 10, "verify_attempts": 1, "verify_spread_log_wait": 0.5}']
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    assert proc.returncode == 2, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert (report_dir / "verify.json").exists(), proc.stdout[-5000:]
    doc = json.loads((report_dir / "verify.json").read_text())
    results = {r["id"]: r for r in doc["results"]}
    http = [r for i, r in results.items() if i.startswith("http:")]
    assert len(http) == 10 and all(r["verdict"] == "pass" for r in http), [r["observed"] for r in http]
    spread = [r for i, r in results.items() if i.startswith("spread:")]
    assert len(spread) == 3
    for r in spread:
        # every request answered correctly, but no log to count them in
        assert r["verdict"] == "fail" and "log read errors" in r["observed"] and "405" in r["observed"]
        assert r["details"]["failed_requests"] == 0
    pod = [r for i, r in results.items() if i.split(":")[0] in ("ping", "tcp", "dns")]
    assert len(pod) == 2 + 4 + 6  # 2 nginx pod IPs (the DNS pod is not in kapi's test namespace)
    assert all(r["verdict"] == "fail" and r["reason"] == "transport_error" for r in pod)
    assert not any(i.startswith("node:") for i in results)  # no node in this inventory
    assert doc["summary"]["pass"] == 10 and doc["summary"]["fail"] == 15
    assert "15 of 25 checks failed: spread:nginx-svc" in proc.stdout
    assert (report_dir / "verify-junit.xml").exists()
