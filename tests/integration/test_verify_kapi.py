"""The API side of the verify stage against the Kubernetes API emulator.

Discovery (kubelab_verify_targets: Services with allocated ClusterIPs and
nodePorts, EndpointSlices, Pods, Deployments, Nodes, the DNS Service) and the
readiness wait run for real against kapi (kmock + adapter). kapi forwards
pods/exec and pods/log to the Node's kubelet; here there is none (a closed
loopback port), so the exec transport and log reading are shown to fail
cleanly (reported as transport errors); their happy paths are covered by
tests/integration/test_kapi_exec_log.py (fake kubelet), the unit tests (fake
exec stream) and the namespace data plane (real logs).
"""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest
from kubernetes import client

from ansible.module_utils import kubelab_checks as c
from ansible.module_utils.testing import patch_module_args

import kubelab_verify_targets
from fixtures_kapi import kube_api  # noqa: F401 - pytest fixture

pytestmark = pytest.mark.slow


def ready_status(ip):
    return {"status": {"phase": "Running", "podIP": ip, "conditions": [{"type": "Ready", "status": "True"}]}}


def build_lab(api, nginx_ready=2):
    """The write-up's objects, as plain API dicts (what kubectl apply would send)."""
    core, apps, disc = client.CoreV1Api(api), client.AppsV1Api(api), client.DiscoveryV1Api(api)
    core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "test"}})
    for name, ip in (("worker01", "198.18.0.11"), ("worker02", "198.18.0.12")):
        core.create_node({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
                          "status": {"addresses": [{"type": "InternalIP", "address": ip},
                                                   {"type": "Hostname", "address": name}]}})
    core.create_namespaced_service("kube-system", {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "kube-dns", "namespace": "kube-system"},
        "spec": {"clusterIP": "10.96.0.10", "selector": {"k8s-app": "kube-dns"},
                 "ports": [{"name": "dns", "port": 53, "protocol": "UDP"},
                           {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]}})
    pods = {"nginx-a": ("10.244.1.15", "worker01", "nginx"), "nginx-b": ("10.244.2.14", "worker02", "nginx"),
            "busybox-1": ("10.244.1.16", "worker01", "busybox")}
    for name, (ip, node, app) in pods.items():
        core.create_namespaced_pod("test", {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "test", "labels": {"app": app}},
            "spec": {"nodeName": node, "containers": [{"name": app, "image": app}]}})
        core.patch_namespaced_pod_status(name, "test", ready_status(ip))
    for name, replicas, app in (("nginx", 2, "nginx"), ("busybox", 1, "busybox")):
        apps.create_namespaced_deployment("test", {
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "test"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": app}},
                     "template": {"metadata": {"labels": {"app": app}},
                                  "spec": {"containers": [{"name": app, "image": app}]}}}})
    apps.patch_namespaced_deployment_status("nginx", "test", {"status": {"readyReplicas": nginx_ready, "replicas": 2}})
    apps.patch_namespaced_deployment_status("busybox", "test", {"status": {"readyReplicas": 1, "replicas": 1}})
    for name, stype, port in (("nginx-svc", "ClusterIP", 80), ("nginx-svc-lb", "LoadBalancer", 8080),
                              ("nginx-svc-np", "NodePort", 8081)):
        core.create_namespaced_service("test", {
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "test"},
            "spec": {"type": stype, "selector": {"app": "nginx"}, "externalIPs": ["198.18.0.11", "198.18.0.12"],
                     "ports": [{"name": "http", "port": port, "targetPort": 80, "protocol": "TCP"}]}})
        disc.create_namespaced_endpoint_slice("test", {
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
            "metadata": {"name": name + "-x1", "namespace": "test", "labels": {"kubernetes.io/service-name": name}},
            "endpoints": [{"addresses": [pods[p][0]], "nodeName": pods[p][1], "conditions": {"ready": True},
                           "targetRef": {"kind": "Pod", "name": p, "namespace": "test"}} for p in ("nginx-a", "nginx-b")],
            "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]})
    return core, apps


def run_targets(kube_api, capsys, **extra):
    args = {"kubeconfig": kube_api.kubeconfig, "namespace": "test", "wait_timeout": 0, "poll_interval": 0.2}
    args.update(extra)
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exc:
            kubelab_verify_targets.main()
    return exc.value.code, json.loads(capsys.readouterr().out)


def test_targets_discovered_from_the_objects(kube_api, capsys):
    build_lab(kube_api.client())
    rc, out = run_targets(kube_api, capsys)
    assert rc == 0, out.get("msg")
    t = out["targets"]
    assert out["changed"] is False
    assert t["cluster_dns"]["cluster_ip"] == "10.96.0.10"
    svcs = {s["name"]: s for s in t["services"]}
    assert sorted(svcs) == ["nginx-svc", "nginx-svc-lb", "nginx-svc-np"]
    # ClusterIPs and nodePorts were allocated by the API server, not written by the test
    for s in svcs.values():
        assert s["cluster_ip"].startswith("10.")
        assert s["backends"] == ["nginx-a", "nginx-b"]
        assert sorted(e["pod"] for e in s["endpoints"]) == ["nginx-a", "nginx-b"]
    assert svcs["nginx-svc"]["ports"][0]["node_port"] is None
    node_ports = [svcs[n]["ports"][0]["node_port"] for n in ("nginx-svc-lb", "nginx-svc-np")]
    assert all(30000 <= p <= 32767 for p in node_ports) and node_ports[0] != node_ports[1]
    assert t["probe_pod"]["name"] == "busybox-1" and t["probe_pod"]["container"] == "busybox"
    urls = sorted("%s:%s" % (x["host"], x["port"]) for x in c.http_targets(t))
    assert len(urls) == 6 + 4
    assert "198.18.0.12:%d" % node_ports[1] in urls


def test_not_ready_fails_naming_what_is_missing(kube_api, capsys):
    build_lab(kube_api.client(), nginx_ready=1)
    rc, out = run_targets(kube_api, capsys)
    assert rc == 1
    assert "deployment nginx: 1/2 ready" in out["msg"] and out["waiting"] == ["deployment nginx: 1/2 ready"]


def test_waits_until_ready(kube_api, capsys):
    api = kube_api.client()
    _core, apps = build_lab(api, nginx_ready=1)

    def later():
        time.sleep(1.0)
        apps.patch_namespaced_deployment_status("nginx", "test", {"status": {"readyReplicas": 2}})

    thread = threading.Thread(target=later)
    thread.start()
    rc, out = run_targets(kube_api, capsys, wait_timeout=20)
    thread.join()
    assert rc == 0, out.get("msg")
    assert out["waited"] >= 0.9


def test_exec_and_logs_without_a_kubelet_fail_as_transport_errors(kube_api):
    api = kube_api.client()
    build_lab(api)
    core = client.CoreV1Api(api)
    # kapi forwards exec/log to the node's kubelet: point both Nodes at a
    # closed loopback port (never dial the lab's 198.18.0.x addresses)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    for name in ("worker01", "worker02"):
        core.patch_node_status(name, {"status": {"addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                                                 "daemonEndpoints": {"kubeletEndpoint": {"Port": port}}}})
    res = c.KubeExecExecutor(core, "test", "busybox-1", "busybox").run(["true"], 5)
    assert res.rc is None and res.error and res.error.startswith("exec")
    assert "error dialing backend" in res.error
    with pytest.raises(client.exceptions.ApiException) as exc:
        c.KubeLogSource(core, since_seconds=60).read("nginx-a", "test")
    assert exc.value.status == 500
    assert f"dial tcp 127.0.0.1:{port}: connect: connection refused" in json.loads(exc.value.body)["message"]
