"""Unit tests of the Kubernetes API emulator adapter (TEST DOUBLE in
molecule/resources/standins/kapi): patch semantics, selectors and the REST
behaviour that kmock alone lacks, exercised in-process over aiohttp."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

STANDINS = Path(__file__).resolve().parents[2] / "molecule" / "resources" / "standins"
if str(STANDINS) not in sys.path:
    sys.path.insert(0, str(STANDINS))

from aiohttp.test_utils import TestClient, TestServer  # noqa: E402

from kapi import KapiServer, merge  # noqa: E402
from kapi.server import match_selector, parse_selector  # noqa: E402

pytestmark = pytest.mark.unit

DEPLOY = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "nginx", "namespace": "test", "labels": {"app": "nginx"}},
    "spec": {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "nginx"}},
        "template": {
            "metadata": {"labels": {"app": "nginx"}},
            "spec": {"containers": [{"name": "nginx", "image": "nginx:1", "ports": [{"containerPort": 80}]}]},
        },
    },
}


# --------------------------------------------------------------- patch logic
def test_strategic_merge_merges_containers_by_name():
    old = DEPLOY["spec"]["template"]["spec"]
    patch = {"containers": [{"name": "nginx", "image": "nginx:2"}, {"name": "side", "image": "busybox"}]}
    new = merge.strategic_merge_patch(old, patch)
    assert [c["name"] for c in new["containers"]] == ["nginx", "side"]
    assert new["containers"][0] == {"name": "nginx", "image": "nginx:2", "ports": [{"containerPort": 80}]}
    assert old["containers"][0]["image"] == "nginx:1"  # input untouched


def test_strategic_merge_directives():
    old = {"containers": [{"name": "a"}, {"name": "b"}], "finalizers": ["x", "y"], "keep": 1}
    patch = {
        "containers": [{"name": "a", "$patch": "delete"}],
        "$deleteFromPrimitiveList/finalizers": ["x"],
        "$setElementOrder/containers": [{"name": "b"}],
        "keep": None,
    }
    assert merge.strategic_merge_patch(old, patch) == {"containers": [{"name": "b"}], "finalizers": ["y"]}


def test_strategic_merge_service_ports_by_port_and_plain_lists_replace():
    old = {"ports": [{"port": 80, "targetPort": 80}], "externalIPs": ["192.0.2.1"]}
    new = merge.strategic_merge_patch(old, {"ports": [{"port": 80, "name": "http"}], "externalIPs": ["192.0.2.2"]})
    assert new == {"ports": [{"port": 80, "targetPort": 80, "name": "http"}], "externalIPs": ["192.0.2.2"]}


def test_json_merge_patch_replaces_lists_and_deletes_nulls():
    old = {"a": {"b": 1, "c": 2}, "l": [1, 2]}
    assert merge.json_merge_patch(old, {"a": {"b": None}, "l": [3]}) == {"a": {"c": 2}, "l": [3]}


def test_apply_patch_prunes_fields_the_manager_stopped_applying():
    live = {"metadata": {"labels": {"a": "1", "b": "2", "other": "x"}}}
    previous = {"metadata": {"labels": {"a": "1", "b": "2"}}}
    applied = {"metadata": {"labels": {"a": "1"}}}
    assert merge.apply_patch(live, applied, previous) == {"metadata": {"labels": {"a": "1", "other": "x"}}}


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ("app=nginx", {"app": "nginx"}, True),
        ("app==nginx", {"app": "busybox"}, False),
        ("app!=nginx", {"app": "busybox"}, True),
        ("app in (nginx, web)", {"app": "web"}, True),
        ("app notin (nginx,web)", {"app": "web"}, False),
        ("tier", {"app": "nginx"}, False),
        ("!tier", {"app": "nginx"}, True),
        ("node-role.kubernetes.io/worker", {"node-role.kubernetes.io/worker": ""}, True),
        ("app=nginx,tier=front", {"app": "nginx", "tier": "back"}, False),
    ],
)
def test_label_selectors(selector, labels, expected):
    assert match_selector(parse_selector(selector), labels) is expected


# --------------------------------------------------------------- REST, in-process
def run(coro_fn, state_file=None):
    async def main():
        server = KapiServer(state_file=state_file)
        async with TestClient(TestServer(server.app())) as client:
            return await coro_fn(client, server)

    return asyncio.run(main())


async def _json(resp, status):
    body = await resp.json()
    assert resp.status == status, body
    return body


def test_namespaces_are_served_and_gate_namespaced_creates():
    async def scenario(c, _):
        names = [n["metadata"]["name"] for n in (await _json(await c.get("/api/v1/namespaces"), 200))["items"]]
        assert names == ["default", "kube-node-lease", "kube-public", "kube-system"]
        err = await _json(await c.post("/apis/apps/v1/namespaces/test/deployments", json=DEPLOY), 404)
        assert err["message"] == 'namespaces "test" not found'
        ns = await _json(await c.post("/api/v1/namespaces", json={"metadata": {"name": "test"}}), 201)
        assert ns["kind"] == "Namespace" and ns["status"] == {"phase": "Active"}
        await _json(await c.get("/api/v1/namespaces/test"), 200)
        await _json(await c.post("/apis/apps/v1/namespaces/test/deployments", json=DEPLOY), 201)
        await _json(await c.delete("/api/v1/namespaces/test"), 200)
        await _json(await c.get("/apis/apps/v1/namespaces/test/deployments/nginx"), 404)

    run(scenario)


def test_list_is_typed_and_metadata_is_server_owned():
    async def scenario(c, _):
        await c.post("/api/v1/namespaces", json={"metadata": {"name": "test"}})
        created = await _json(await c.post("/apis/apps/v1/namespaces/test/deployments",
                                           json={**DEPLOY, "status": {"readyReplicas": 9}}), 201)
        meta = created["metadata"]
        assert meta["uid"] and meta["creationTimestamp"].endswith("Z") and meta["generation"] == 1
        assert int(meta["resourceVersion"]) > 0
        assert "status" not in created  # a create does not set status
        listing = await _json(await c.get("/apis/apps/v1/deployments?labelSelector=app%3Dnginx"), 200)
        assert listing["kind"] == "DeploymentList" and listing["apiVersion"] == "apps/v1"
        assert [i["kind"] for i in listing["items"]] == ["Deployment"]
        empty = await _json(await c.get("/apis/apps/v1/deployments?labelSelector=app%3Dother"), 200)
        assert empty["items"] == []
        dup = await _json(await c.post("/apis/apps/v1/namespaces/test/deployments", json=DEPLOY), 409)
        assert dup["reason"] == "AlreadyExists"

    run(scenario)


def test_put_checks_resource_version_and_keeps_status():
    async def scenario(c, _):
        await c.post("/api/v1/namespaces", json={"metadata": {"name": "test"}})
        obj = await _json(await c.post("/apis/apps/v1/namespaces/test/deployments", json=DEPLOY), 201)
        url = "/apis/apps/v1/namespaces/test/deployments/nginx"
        status = await _json(await c.patch(url + "/status", data=json.dumps({"status": {"readyReplicas": 2}}),
                                           headers={"Content-Type": "application/merge-patch+json"}), 200)
        assert status["status"] == {"readyReplicas": 2}
        stale = json.loads(json.dumps(obj))
        stale["spec"]["replicas"] = 3
        assert (await _json(await c.put(url, json=stale), 409))["reason"] == "Conflict"
        fresh = json.loads(json.dumps(status))
        fresh["spec"]["replicas"] = 3
        fresh["status"] = {"readyReplicas": 0}
        updated = await _json(await c.put(url, json=fresh), 200)
        assert updated["spec"]["replicas"] == 3 and updated["metadata"]["generation"] == 2
        assert updated["status"] == {"readyReplicas": 2}  # main resource cannot change status
        assert updated["metadata"]["uid"] == obj["metadata"]["uid"]

    run(scenario)


def test_noop_patch_keeps_resource_version_and_dry_run_stores_nothing():
    async def scenario(c, _):
        await c.post("/api/v1/namespaces", json={"metadata": {"name": "test"}})
        obj = await _json(await c.post("/apis/apps/v1/namespaces/test/deployments", json=DEPLOY), 201)
        url = "/apis/apps/v1/namespaces/test/deployments/nginx"
        smp = {"Content-Type": "application/strategic-merge-patch+json"}
        same = await _json(await c.patch(url, data=json.dumps({"spec": {"replicas": 2}}), headers=smp), 200)
        assert same["metadata"]["resourceVersion"] == obj["metadata"]["resourceVersion"]
        dry = await _json(await c.patch(url + "?dryRun=All", data=json.dumps({"spec": {"replicas": 5}}), headers=smp), 200)
        assert dry["spec"]["replicas"] == 5
        assert (await _json(await c.get(url), 200))["spec"]["replicas"] == 2

    run(scenario)


def test_server_side_apply_creates_then_updates():
    async def scenario(c, _):
        url = "/api/v1/namespaces/default/configmaps/cfg?fieldManager=t"
        apply = {"Content-Type": "application/apply-patch+yaml"}
        body = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\ndata:\n  a: '1'\n  b: '2'\n"
        created = await _json(await c.patch(url, data=body, headers=apply), 200)
        assert created["data"] == {"a": "1", "b": "2"}
        body2 = json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"a": "3"}})
        updated = await _json(await c.patch(url, data=body2, headers=apply), 200)
        assert updated["data"] == {"a": "3"}

    run(scenario)


def test_services_get_cluster_ip_and_node_ports():
    async def scenario(c, _):
        kube = await _json(await c.get("/api/v1/namespaces/default/services/kubernetes"), 200)
        assert kube["spec"]["clusterIP"] == "10.96.0.1"
        svc = {"metadata": {"name": "np"}, "spec": {"type": "NodePort", "ports": [{"port": 8081, "targetPort": 80}]}}
        np = await _json(await c.post("/api/v1/namespaces/default/services", json=svc), 201)
        port = np["spec"]["ports"][0]
        assert 30000 <= port["nodePort"] <= 32767 and port["protocol"] == "TCP"
        assert np["spec"]["clusterIP"] not in ("10.96.0.1", "", None)
        again = await _json(await c.patch("/api/v1/namespaces/default/services/np",
                                          data=json.dumps({"metadata": {"labels": {"x": "y"}}}),
                                          headers={"Content-Type": "application/merge-patch+json"}), 200)
        assert again["spec"]["ports"][0]["nodePort"] == port["nodePort"]
        assert again["spec"]["clusterIP"] == np["spec"]["clusterIP"]

    run(scenario)


def test_core_discovery_reports_v1_and_subresources_have_no_short_names():
    async def scenario(c, _):
        doc = await _json(await c.get("/api/v1"), 200)
        assert doc["groupVersion"] == "v1"
        by_name = {r["name"]: r for r in doc["resources"]}
        assert by_name["namespaces"]["namespaced"] is False and by_name["namespaces"]["kind"] == "Namespace"
        assert by_name["services/status"]["shortNames"] == []
        assert (await _json(await c.get("/version"), 200))["gitVersion"] == "v1.35.0"
        await _json(await c.get("/apis/apps/v1/namespaces/default/deployments/x/exec"), 405)

    run(scenario)


def test_finalizers_delay_deletion_until_removed():
    async def scenario(c, _):
        cm = {"metadata": {"name": "f", "finalizers": ["kubelab/test"]}}
        await _json(await c.post("/api/v1/namespaces/default/configmaps", json=cm), 201)
        url = "/api/v1/namespaces/default/configmaps/f"
        marked = await _json(await c.delete(url), 200)
        assert marked["metadata"]["deletionTimestamp"]
        await _json(await c.get(url), 200)
        await _json(await c.patch(url, data=json.dumps({"metadata": {"finalizers": None}}),
                                  headers={"Content-Type": "application/merge-patch+json"}), 200)
        await _json(await c.get(url), 404)

    run(scenario)


def test_watch_streams_changes_after_resource_version():
    async def scenario(c, _):
        listing = await _json(await c.get("/api/v1/namespaces/default/configmaps"), 200)
        rv = listing["metadata"]["resourceVersion"]
        await c.post("/api/v1/namespaces/default/configmaps", json={"metadata": {"name": "w"}})
        resp = await c.get(f"/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={rv}&timeoutSeconds=1")
        lines = [json.loads(line) for line in (await resp.text()).splitlines()]
        assert [(e["type"], e["object"]["metadata"]["name"]) for e in lines] == [("ADDED", "w")]

    run(scenario)


def test_state_file_survives_restart(tmp_path):
    state = tmp_path / "state.json"

    async def first(c, _):
        await _json(await c.post("/api/v1/nodes", json={"metadata": {"name": "n1"}, "status": {"phase": "x"}}), 201)

    async def second(c, _):
        node = await _json(await c.get("/api/v1/nodes/n1"), 200)
        assert node["status"] == {"phase": "x"}  # Node status is kept on create
        ns = await _json(await c.get("/api/v1/namespaces"), 200)
        assert int(ns["metadata"]["resourceVersion"]) >= int(node["metadata"]["resourceVersion"])

    run(first, state_file=str(state))
    run(second, state_file=str(state))


def test_table_for_nodes_and_default_kinds():
    async def scenario(c, _):
        node = {"metadata": {"name": "w1", "labels": {"node-role.kubernetes.io/worker": ""}},
                "status": {"conditions": [{"type": "Ready", "status": "False"}], "nodeInfo": {"kubeletVersion": "v1.35.0"}}}
        await _json(await c.post("/api/v1/nodes", json=node), 201)
        accept = {"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"}
        table = await _json(await c.get("/api/v1/nodes", headers=accept), 200)
        assert table["kind"] == "Table"
        names = [col["name"] for col in table["columnDefinitions"] if col["priority"] == 0]
        assert names == ["Name", "Status", "Roles", "Age", "Version"]
        assert table["rows"][0]["cells"][:3] == ["w1", "NotReady", "worker"]
        assert table["rows"][0]["object"]["metadata"]["name"] == "w1"
        ns = await _json(await c.get("/api/v1/namespaces/default", headers=accept), 200)
        assert [col["name"] for col in ns["columnDefinitions"]] == ["Name", "Age"]
        plain = await _json(await c.get("/api/v1/nodes"), 200)
        assert plain["kind"] == "NodeList"

    run(scenario)


def test_protobuf_namespace_body_is_decoded():
    from kapi import proto

    def field(number, payload):
        return bytes([number << 3 | 2, len(payload)]) + payload

    meta = field(1, b"x") + field(2, b"") + field(11, field(1, b"team") + field(2, b"a"))
    raw = field(1, meta) + field(2, b"") + field(3, field(1, b""))
    body = proto.MAGIC + field(1, field(1, b"v1") + field(2, b"Namespace")) + field(2, raw)
    assert proto.decode(body) == {"apiVersion": "v1", "kind": "Namespace",
                                  "metadata": {"name": "x", "labels": {"team": "a"}}}
    deployment = proto.MAGIC + field(1, field(1, b"apps/v1") + field(2, b"Deployment")) + field(2, field(1, meta))
    with pytest.raises(proto.ProtoError):
        proto.decode(deployment)
