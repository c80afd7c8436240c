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
def run(coro_fn, state_file=None, **options):
    async def main():
        server = KapiServer(state_file=state_file, **options)
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


# --------------------------------------------------------------- validation (README "Validation")
MERGE = {"Content-Type": "application/merge-patch+json"}
APPLY = {"Content-Type": "application/apply-patch+yaml"}


async def _invalid(resp, kind, name, group=""):
    """A 422 Status shaped as errors.NewInvalid's; returns (message, causes)."""
    body = await _json(resp, 422)
    assert (body["kind"], body["apiVersion"], body["status"], body["reason"], body["code"]) == \
        ("Status", "v1", "Failure", "Invalid", 422)
    details = body["details"]
    assert (details["kind"], details["name"], details["group"]) == (kind, name, group)
    return body["message"], details["causes"]


def _svc(name, **spec):
    return {"metadata": {"name": name}, "spec": {"ports": [{"name": "http", "port": 80}], **spec}}


def test_deployment_selector_is_immutable_on_every_write_path():
    async def scenario(c, _):
        await _json(await c.post("/api/v1/namespaces", json={"metadata": {"name": "test"}}), 201)
        await _json(await c.post("/apis/apps/v1/namespaces/test/deployments", json=DEPLOY), 201)
        url = "/apis/apps/v1/namespaces/test/deployments/nginx"
        new_labels = {"spec": {"selector": {"matchLabels": {"app": "web"}},
                               "template": {"metadata": {"labels": {"app": "web"}}}}}
        expected = ('Deployment.apps "nginx" is invalid: spec.selector: Invalid value: '
                    '{"matchLabels":{"app":"web"}}: field is immutable')
        for resp in (
            await c.patch(url, data=json.dumps(new_labels), headers=MERGE),
            await c.patch(url, data=json.dumps(new_labels), headers={"Content-Type": "application/strategic-merge-patch+json"}),
            await c.patch(url + "?fieldManager=t", data=json.dumps(dict(DEPLOY, **new_labels)), headers=APPLY),
            await c.put(url, json={**DEPLOY, "spec": {**DEPLOY["spec"], **new_labels["spec"]}}),
            await c.patch(url + "?dryRun=All", data=json.dumps(new_labels), headers=MERGE),
        ):
            message, causes = await _invalid(resp, "Deployment", "nginx", "apps")
            assert message == expected
            assert causes == [{"reason": "FieldValueInvalid", "field": "spec.selector",
                               "message": 'Invalid value: {"matchLabels":{"app":"web"}}: field is immutable'}]
        stored = await _json(await c.get(url), 200)
        assert stored["spec"]["selector"] == {"matchLabels": {"app": "nginx"}}
        # an empty matchExpressions list is the same selector (semantic equality)
        same = {"spec": {"selector": {"matchLabels": {"app": "nginx"}, "matchExpressions": []}}}
        await _json(await c.patch(url, data=json.dumps(same), headers=MERGE), 200)

    run(scenario)


def test_deployment_selector_must_match_the_template():
    async def scenario(c, _):
        await _json(await c.post("/api/v1/namespaces", json={"metadata": {"name": "test"}}), 201)
        template = {"metadata": {"labels": {"tier": "web", "app": "nginx"}}, "spec": DEPLOY["spec"]["template"]["spec"]}
        bad = {**DEPLOY, "spec": {**DEPLOY["spec"], "selector": {"matchLabels": {"app": "other"}}, "template": template}}
        message, _causes = await _invalid(await c.post("/apis/apps/v1/namespaces/test/deployments", json=bad),
                                          "Deployment", "nginx", "apps")
        # a Go map: keys sorted
        assert message == ('Deployment.apps "nginx" is invalid: spec.template.metadata.labels: Invalid value: '
                           '{"app":"nginx","tier":"web"}: `selector` does not match template `labels`')
        none = {**DEPLOY, "spec": {k: v for k, v in DEPLOY["spec"].items() if k != "selector"}}
        message, causes = await _invalid(await c.post("/apis/apps/v1/namespaces/test/deployments", json=none),
                                         "Deployment", "nginx", "apps")
        assert message == 'Deployment.apps "nginx" is invalid: spec.selector: Required value'
        assert causes == [{"reason": "FieldValueRequired", "field": "spec.selector", "message": "Required value"}]

    run(scenario)


@pytest.mark.parametrize("node_port, detail", [
    (30000 - 1, "provided port is not in the valid range. The range of valid ports is 30000-32767"),
    (32768, "provided port is not in the valid range. The range of valid ports is 30000-32767"),
])
def test_a_node_port_outside_the_range_is_refused(node_port, detail):
    async def scenario(c, _):
        svc = _svc("np", type="NodePort")
        svc["spec"]["ports"][0]["nodePort"] = node_port
        message, causes = await _invalid(await c.post("/api/v1/namespaces/default/services", json=svc), "Service", "np")
        assert message == f'Service "np" is invalid: spec.ports[0].nodePort: Invalid value: {node_port}: {detail}'
        assert causes == [{"reason": "FieldValueInvalid", "field": "spec.ports[0].nodePort",
                           "message": f"Invalid value: {node_port}: {detail}"}]

    run(scenario)


def test_a_node_port_of_another_service_is_refused_but_a_service_keeps_its_own():
    async def scenario(c, _):
        first = _svc("a", type="NodePort")
        first["spec"]["ports"][0]["nodePort"] = 30080
        await _json(await c.post("/api/v1/namespaces/default/services", json=first), 201)
        second = _svc("b", type="LoadBalancer")
        second["spec"]["ports"][0]["nodePort"] = 30080
        message, _ = await _invalid(await c.post("/api/v1/namespaces/default/services", json=second), "Service", "b")
        assert message == ('Service "b" is invalid: spec.ports[0].nodePort: Invalid value: 30080: '
                           'provided port is already allocated')
        # the same port on an update of its own Service is fine (kubectl apply twice)
        await _json(await c.patch("/api/v1/namespaces/default/services/a?fieldManager=t",
                                  data=json.dumps(first), headers=APPLY), 200)
        # and moving an existing Service onto a taken port is refused too
        await _json(await c.post("/api/v1/namespaces/default/services", json=_svc("c", type="NodePort")), 201)
        patch = {"spec": {"ports": [{"name": "http", "port": 80, "nodePort": 30080}]}}
        message, _ = await _invalid(await c.patch("/api/v1/namespaces/default/services/c", data=json.dumps(patch),
                                                  headers={"Content-Type": "application/strategic-merge-patch+json"}),
                                    "Service", "c")
        assert "provided port is already allocated" in message

    run(scenario)


@pytest.mark.parametrize("ip, detail", [
    ("127.0.0.1", "may not be in the loopback range (127.0.0.0/8, ::1/128)"),
    ("::1", "may not be in the loopback range (127.0.0.0/8, ::1/128)"),
    ("169.254.169.254", "may not be in the link-local range (169.254.0.0/16, fe80::/10)"),
    ("fe80::1", "may not be in the link-local range (169.254.0.0/16, fe80::/10)"),
    ("224.0.0.251", "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)"),
    ("ff02::fb", "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)"),
    ("ff12::1", "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)"),
    ("0.0.0.0", "may not be unspecified (0.0.0.0)"),
    ("::", "may not be unspecified (::)"),
    ("nginx.example", "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"),
])
def test_special_external_ips_are_refused(ip, detail):
    async def scenario(c, _):
        svc = _svc("ext", externalIPs=["192.0.2.21", ip])
        message, causes = await _invalid(await c.post("/api/v1/namespaces/default/services", json=svc),
                                         "Service", "ext")
        assert message == f'Service "ext" is invalid: spec.externalIPs[1]: Invalid value: "{ip}": {detail}'
        assert causes[0]["field"] == "spec.externalIPs[1]"

    run(scenario)


def test_ordinary_external_ips_are_accepted():
    async def scenario(c, _):
        # 239.x multicast is not link-local: ValidateNonSpecialIP lets it through
        svc = _svc("ext", externalIPs=["192.0.2.21", "2001:db8::1", "239.1.1.1"])
        await _json(await c.post("/api/v1/namespaces/default/services", json=svc), 201)

    run(scenario)


def test_the_test_only_switch_accepts_loopback_external_ips_but_still_checks_syntax():
    async def scenario(c, _):
        await _json(await c.post("/api/v1/namespaces/default/services",
                                 json=_svc("lo", externalIPs=["127.0.0.1", "127.0.0.2"])), 201)
        message, _ = await _invalid(await c.post("/api/v1/namespaces/default/services",
                                                 json=_svc("bad", externalIPs=["x"])), "Service", "bad")
        assert "must be a valid IP address" in message

    run(scenario, allow_special_external_ips=True)


def test_cluster_ip_may_not_change_once_set():
    async def scenario(c, _):
        created = await _json(await c.post("/api/v1/namespaces/default/services", json=_svc("s")), 201)
        ip = created["spec"]["clusterIP"]
        message, causes = await _invalid(await c.patch(
            "/api/v1/namespaces/default/services/s", data=json.dumps({"spec": {"clusterIP": "None"}}),
            headers=MERGE), "Service", "s")
        assert message == 'Service "s" is invalid: spec.clusterIPs[0]: Invalid value: ["None"]: may not change once set'
        assert causes[0]["field"] == "spec.clusterIPs[0]"
        # omitting it keeps it (the REST layer copies the allocated IP)
        kept = await _json(await c.put("/api/v1/namespaces/default/services/s", json=_svc("s")), 200)
        assert kept["spec"]["clusterIP"] == ip

    run(scenario)


def test_duplicate_ports_and_a_node_port_on_cluster_ip_are_refused_together():
    async def scenario(c, _):
        svc = {"metadata": {"name": "dup"}, "spec": {"ports": [
            {"name": "http", "port": 80, "nodePort": 30001}, {"name": "http", "port": 80}]}}
        message, causes = await _invalid(await c.post("/api/v1/namespaces/default/services", json=svc),
                                         "Service", "dup")
        assert message == (
            'Service "dup" is invalid: [spec.ports[1].name: Duplicate value: "http", '
            "spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP', "
            'spec.ports[1]: Duplicate value: {"Name":"","Protocol":"TCP","AppProtocol":null,"Port":80,'
            '"TargetPort":0,"NodePort":0}]')
        assert [x["reason"] for x in causes] == ["FieldValueDuplicate", "FieldValueForbidden", "FieldValueDuplicate"]
        unnamed = {"metadata": {"name": "un"}, "spec": {"ports": [{"port": 80}, {"port": 81}]}}
        message, _ = await _invalid(await c.post("/api/v1/namespaces/default/services", json=unnamed),
                                    "Service", "un")
        assert message == 'Service "un" is invalid: [spec.ports[0].name: Required value, spec.ports[1].name: Required value]'

    run(scenario)


def test_a_type_change_to_cluster_ip_drops_the_allocated_node_port():
    async def scenario(c, _):
        created = await _json(await c.post("/api/v1/namespaces/default/services", json=_svc("t", type="NodePort")), 201)
        assert created["spec"]["ports"][0]["nodePort"]
        changed = await _json(await c.patch("/api/v1/namespaces/default/services/t",
                                            data=json.dumps({"spec": {"type": "ClusterIP"}}), headers=MERGE), 200)
        assert "nodePort" not in changed["spec"]["ports"][0]

    run(scenario)
