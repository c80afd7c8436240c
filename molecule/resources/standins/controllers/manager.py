# TEST DOUBLE - used only by kubelab's molecule/resources and tests, never by the roles.
"""The controllers stand-in against an API server: one reconcile pass at a time.

A pass runs, in this order: the garbage collector (owned objects whose
controller owner is gone), the Deployment controller, the ReplicaSet
controller, the scheduler, the Endpoints and EndpointSlice controllers.
Every write is a normal API call; a 409 Conflict leaves the object for the
next pass, as upstream controllers requeue.
"""

from __future__ import annotations

import copy
import datetime
from typing import Any, Callable

from . import logic
from .kclient import ApiError, Client
from .logic import meta


class Controllers:
    def __init__(self, client: Client, clock: Callable[[], datetime.datetime] = logic.now, log=print,
                 apiserver_endpoint: tuple[str, int] | None = None):
        self.client = client
        self.clock = clock
        self.log = log
        self.apiserver_endpoint = apiserver_endpoint
        self.actions: list[str] = []

    def _act(self, text: str) -> None:
        self.actions.append(text)
        self.log(text)

    # ---- the pass ---------------------------------------------------------
    def reconcile_once(self) -> list[str]:
        """One pass over every controller; returns what it changed."""
        self.actions = []
        steps = [self.garbage_collect, self.sync_deployments, self.sync_replicasets, self.schedule,
                 self.sync_endpoints]
        if self.apiserver_endpoint:
            steps.append(self.sync_kubernetes_endpoints)
        for step in steps:
            try:
                step()
            except ApiError as exc:
                if exc.code != 409:
                    raise
                self._act(f"conflict in {step.__name__}: {exc.message} (retried next pass)")
        return self.actions

    def settle(self, max_passes: int = 20) -> list[str]:
        """Passes until one changes nothing (at most max_passes); every action."""
        done: list[str] = []
        for _ in range(max_passes):
            actions = self.reconcile_once()
            if not actions:
                break
            done += actions
        return done

    # ---- garbage collector (pkg/controller/garbagecollector) --------------
    def garbage_collect(self) -> None:
        owners = {
            "replicasets": "deployments",
            "pods": "replicasets",
            "endpointslices": "services",
        }
        uids: dict[str, set[str]] = {}
        for owner_kind in set(owners.values()):
            uids[owner_kind] = {meta(o)["uid"] for o in self.client.list(owner_kind)}
        kinds = {"Deployment": "deployments", "ReplicaSet": "replicasets", "Service": "services"}
        for kind, owner_kind in owners.items():
            for obj in self.client.list(kind):
                ref = logic.controller_ref(obj)
                if ref is None or kinds.get(ref.get("kind")) != owner_kind:
                    continue
                if ref.get("uid") not in uids[owner_kind]:
                    self.client.delete(kind, meta(obj).get("namespace"), meta(obj)["name"])
                    self._act(f"gc: deleted {kind} {meta(obj).get('namespace')}/{meta(obj)['name']} "
                              f"(owner {ref.get('kind')} {ref.get('name')} is gone)")

    # ---- Deployment controller (pkg/controller/deployment) ----------------
    def sync_deployments(self) -> None:
        all_rs = self.client.list("replicasets")
        for deployment in self.client.list("deployments"):
            if meta(deployment).get("deletionTimestamp"):
                continue
            owned = [rs for rs in all_rs
                     if (logic.controller_ref(rs) or {}).get("uid") == meta(deployment)["uid"]]
            self.sync_deployment(deployment, owned)

    def sync_deployment(self, d: dict[str, Any], owned: list[dict[str, Any]]) -> None:
        ns, name = meta(d)["namespace"], meta(d)["name"]
        spec = logic.deployment_spec(d)
        template = spec.get("template") or {}
        owned = sorted(owned, key=lambda rs: (meta(rs).get("creationTimestamp") or "", meta(rs)["name"]))
        new_rs = next((rs for rs in owned
                       if logic.equal_ignore_hash((rs.get("spec") or {}).get("template") or {}, template)), None)
        old_rs = [rs for rs in owned if rs is not new_rs]
        max_old = max([int((meta(rs).get("annotations") or {}).get(logic.REVISION, "0") or 0) for rs in old_rs] or [0])
        revision = str(max_old + 1)
        status = copy.deepcopy(d.get("status") or {})
        if spec.get("paused"):
            self._write_status(d, logic.rollout_status(d, owned, new_rs, self.clock()))
            return
        if new_rs is None:
            new_rs = self._create_rs(d, spec, old_rs, revision)
            if new_rs is None:
                return
            owned = owned + [new_rs]
            cond = logic.new_condition("Progressing", "True", "NewReplicaSetCreated",
                                       f'Created new replica set "{meta(new_rs)["name"]}"')
            status["conditions"] = logic.set_condition(status.get("conditions") or [], cond)
            d = {**d, "status": status}
        # the same sync goes on with the rollout and the status (sync.go rolloutRolling)
        rs_rev = int((meta(new_rs).get("annotations") or {}).get(logic.REVISION, "0") or 0)
        if rs_rev < max_old + 1:
            self.client.patch("replicasets", ns, meta(new_rs)["name"],
                              {"metadata": {"annotations": {logic.REVISION: revision}}})
            self._act(f"deployment {ns}/{name}: replicaset {meta(new_rs)['name']} revision {revision}")
        else:
            revision = str(rs_rev)
        self._set_revision(d, revision)
        if logic.condition(status.get("conditions") or [], "Progressing") is None:
            cond = logic.new_condition("Progressing", "True", "FoundNewReplicaSet",
                                       f'Found new replica set "{meta(new_rs)["name"]}"')
            status["conditions"] = logic.set_condition(status.get("conditions") or [], cond)
            d = {**d, "status": status}
        if spec["strategy"]["type"] == "Recreate":
            if self._recreate(d, spec, new_rs, old_rs):
                self._write_status(d, logic.rollout_status(d, owned, new_rs, self.clock()))
                return
        else:
            want = logic.new_rs_new_replicas(spec, owned, new_rs)
            if logic.rs_spec_replicas(new_rs) > spec["replicas"]:
                want = spec["replicas"]
            if want != logic.rs_spec_replicas(new_rs):
                self._scale(d, new_rs, want, spec)
                self._write_status(d, logic.rollout_status(d, owned, new_rs, self.clock()))
                return
            downs = logic.old_rs_scale_down(spec, owned, old_rs, new_rs)
            if downs:
                for rs in old_rs:
                    if meta(rs)["name"] in downs:
                        self._scale(d, rs, downs[meta(rs)["name"]], spec)
                self._write_status(d, logic.rollout_status(d, owned, new_rs, self.clock()))
                return
        status = logic.rollout_status(d, owned, new_rs, self.clock())
        if logic.deployment_complete(d, status):
            self._cleanup(d, spec, old_rs)
        self._write_status(d, status)

    def _recreate(self, d, spec, new_rs, old_rs) -> bool:
        """recreate.go rolloutRecreate: old ReplicaSets to 0, wait for their pods, then scale the new one up."""
        scaled = False
        for rs in old_rs:
            if logic.rs_spec_replicas(rs) != 0:
                self._scale(d, rs, 0, spec)
                scaled = True
        if scaled:
            return True
        old_uids = {meta(rs)["uid"] for rs in old_rs}
        pods = self.client.list("pods", meta(d)["namespace"])
        if any((logic.controller_ref(p) or {}).get("uid") in old_uids and logic.pod_active(p) for p in pods):
            return True
        if logic.rs_spec_replicas(new_rs) != spec["replicas"]:
            self._scale(d, new_rs, spec["replicas"], spec)
            return True
        return False

    def _create_rs(self, d, spec, old_rs, revision) -> dict[str, Any] | None:
        ns, name = meta(d)["namespace"], meta(d)["name"]
        collision = (d.get("status") or {}).get("collisionCount")
        pod_hash = logic.compute_hash(spec.get("template") or {}, collision)
        template = copy.deepcopy(spec.get("template") or {})
        template.setdefault("metadata", {}).setdefault("labels", {})[logic.HASH_LABEL] = pod_hash
        selector = copy.deepcopy(spec.get("selector") or {})
        selector.setdefault("matchLabels", {})[logic.HASH_LABEL] = pod_hash
        surge, _ = logic.resolve_fenceposts(spec)
        annotations = {k: v for k, v in (meta(d).get("annotations") or {}).items()
                       if k not in logic.ANNOTATIONS_TO_SKIP}
        annotations.update({logic.REVISION: revision, logic.DESIRED_REPLICAS: str(spec["replicas"]),
                            logic.MAX_REPLICAS: str(spec["replicas"] + surge)})
        body = {
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": f"{name}-{pod_hash}", "namespace": ns,
                         "labels": dict(template["metadata"]["labels"]), "annotations": annotations,
                         "ownerReferences": [logic.owner_reference(d, "apps/v1", "Deployment")]},
            "spec": {"replicas": 0, "minReadySeconds": spec["minReadySeconds"], "selector": selector,
                     "template": template},
        }
        body["spec"]["replicas"] = logic.new_rs_new_replicas(spec, old_rs + [body], body)
        try:
            created = self.client.create("replicasets", ns, body)
        except ApiError as exc:
            if exc.code != 409:
                raise
            existing = self.client.get("replicasets", ns, body["metadata"]["name"])
            if existing and (logic.controller_ref(existing) or {}).get("uid") == meta(d)["uid"] and \
                    logic.equal_ignore_hash(existing["spec"]["template"], spec.get("template") or {}):
                return existing
            # sync.go getNewReplicaSet: a hash collision bumps status.collisionCount
            status = copy.deepcopy(d.get("status") or {})
            status["collisionCount"] = int(collision or 0) + 1
            self.client.replace("deployments", ns, name, {**d, "status": status}, sub="status")
            self._act(f"deployment {ns}/{name}: hash collision on {body['metadata']['name']}, "
                      f"collisionCount {status['collisionCount']}")
            return None
        self._act(f"deployment {ns}/{name}: created replicaset {meta(created)['name']} "
                  f"replicas {body['spec']['replicas']}")
        return created

    def _set_revision(self, d, revision) -> None:
        if (meta(d).get("annotations") or {}).get(logic.REVISION) != revision:
            self.client.patch("deployments", meta(d)["namespace"], meta(d)["name"],
                              {"metadata": {"annotations": {logic.REVISION: revision}}})
            self._act(f"deployment {meta(d)['namespace']}/{meta(d)['name']}: revision {revision}")

    def _scale(self, d, rs, replicas, spec) -> None:
        surge, _ = logic.resolve_fenceposts(spec)
        self.client.patch("replicasets", meta(rs)["namespace"], meta(rs)["name"], {
            "metadata": {"annotations": {logic.DESIRED_REPLICAS: str(spec["replicas"]),
                                         logic.MAX_REPLICAS: str(spec["replicas"] + surge)}},
            "spec": {"replicas": replicas}})
        self._act(f"deployment {meta(d)['namespace']}/{meta(d)['name']}: scaled replicaset "
                  f"{meta(rs)['name']} {logic.rs_spec_replicas(rs)} -> {replicas}")

    def _cleanup(self, d, spec, old_rs) -> None:
        """sync.go cleanupDeployment: keep revisionHistoryLimit old ReplicaSets that are scaled to 0."""
        limit = spec["revisionHistoryLimit"]
        idle = [rs for rs in old_rs if logic.rs_spec_replicas(rs) == 0 and logic.rs_status(rs, "replicas") == 0
                and not meta(rs).get("deletionTimestamp")]
        idle.sort(key=lambda rs: int((meta(rs).get("annotations") or {}).get(logic.REVISION, "0") or 0))
        for rs in idle[:max(len(idle) - limit, 0)]:
            self.client.delete("replicasets", meta(rs)["namespace"], meta(rs)["name"])
            self._act(f"deployment {meta(d)['namespace']}/{meta(d)['name']}: deleted old replicaset {meta(rs)['name']}")

    def _write_status(self, d, status) -> None:
        fresh = self.client.get("deployments", meta(d)["namespace"], meta(d)["name"])
        if fresh is None:
            return
        if logic.status_equal(_stable(fresh.get("status") or {}), _stable(status)):
            return
        self.client.replace("deployments", meta(d)["namespace"], meta(d)["name"], {**fresh, "status": status},
                            sub="status")
        self._act(f"deployment {meta(d)['namespace']}/{meta(d)['name']}: status "
                  f"{_summary(status)}")

    # ---- ReplicaSet controller (pkg/controller/replicaset) ----------------
    def sync_replicasets(self) -> None:
        pods = self.client.list("pods")
        at = self.clock()
        for rs in self.client.list("replicasets"):
            if meta(rs).get("deletionTimestamp"):
                continue
            owned = [p for p in pods if (logic.controller_ref(p) or {}).get("uid") == meta(rs)["uid"]]
            active = [p for p in owned if logic.pod_active(p)]
            want = logic.rs_spec_replicas(rs)
            ns = meta(rs)["namespace"]
            if len(active) < want:
                for _ in range(want - len(active)):
                    pod = self.client.create("pods", ns, logic.pod_from_template(rs))
                    active.append(pod)
                    self._act(f"replicaset {ns}/{meta(rs)['name']}: created pod {meta(pod)['name']}")
            elif len(active) > want:
                for pod in logic.pods_to_delete(active, len(active) - want):
                    self.client.delete("pods", ns, meta(pod)["name"])
                    active.remove(pod)
                    self._act(f"replicaset {ns}/{meta(rs)['name']}: deleted pod {meta(pod)['name']}")
            status = logic.replicaset_status(rs, active, at)
            old = {k: v for k, v in (rs.get("status") or {}).items() if k != "conditions"}
            if old != status:
                fresh = self.client.get("replicasets", ns, meta(rs)["name"])
                if fresh is not None:
                    self.client.replace("replicasets", ns, meta(rs)["name"], {**fresh, "status": status},
                                        sub="status")
                    self._act(f"replicaset {ns}/{meta(rs)['name']}: status {_summary(status)}")

    # ---- scheduler (pkg/scheduler) ----------------------------------------
    def schedule(self) -> None:
        pods = self.client.list("pods")
        nodes = sorted(self.client.list("nodes"), key=lambda n: meta(n)["name"])
        for pod in sorted(pods, key=lambda p: (meta(p).get("creationTimestamp") or "", meta(p)["name"])):
            spec = pod.get("spec") or {}
            if spec.get("nodeName") or not logic.pod_active(pod):
                continue
            if spec.get("schedulerName", "default-scheduler") != "default-scheduler":
                continue
            ns, name = meta(pod)["namespace"], meta(pod)["name"]
            node, message = logic.choose_node(pod, nodes, pods)
            status = copy.deepcopy(pod.get("status") or {})
            status.setdefault("phase", "Pending")
            when = logic.timestamp(self.clock())
            if node is None:
                cond = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                        "message": message, "lastProbeTime": None, "lastTransitionTime": when}
                current = logic.pod_condition(pod, "PodScheduled")
                if current and current.get("message") == message and current.get("status") == "False":
                    continue
                status["conditions"] = [c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"] + [cond]
                self.client.patch("pods", ns, name, {"status": status}, sub="status")
                self._act(f"scheduler: pod {ns}/{name} unschedulable: {message}")
                continue
            # the pods/binding subresource (registry/core/pod/storage assignPod): nodeName + PodScheduled
            self.client.patch("pods", ns, name, {"spec": {"nodeName": node}})
            cond = {"type": "PodScheduled", "status": "True", "lastProbeTime": None, "lastTransitionTime": when}
            status["conditions"] = [c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"] + [cond]
            self.client.patch("pods", ns, name, {"status": status}, sub="status")
            pod.setdefault("spec", {})["nodeName"] = node
            self._act(f"scheduler: pod {ns}/{name} -> {node}")

    # ---- Endpoints + EndpointSlice controllers ----------------------------
    def sync_endpoints(self) -> None:
        services = self.client.list("services")
        pods = self.client.list("pods")
        slices = self.client.list("endpointslices", label_selector=f"{logic.MANAGED_BY_LABEL}={logic.MANAGED_BY}")
        existing_eps = self.client.list("endpoints")
        keys = {(meta(s)["namespace"], meta(s)["name"]) for s in services}
        for ep in existing_eps:
            key = (meta(ep)["namespace"], meta(ep)["name"])
            if key not in keys and (meta(ep).get("labels") or {}).get(logic.SKIP_MIRROR_LABEL) == "true":
                self.client.delete("endpoints", *key)
                self._act(f"endpoints: deleted {key[0]}/{key[1]} (service gone)")
        eps_by_key = {(meta(e)["namespace"], meta(e)["name"]): e for e in existing_eps}
        for svc in services:
            if not (svc.get("spec") or {}).get("selector") or (svc.get("spec") or {}).get("type") == "ExternalName":
                continue
            ns, name = meta(svc)["namespace"], meta(svc)["name"]
            want = logic.endpoints_object(svc, pods)
            have = eps_by_key.get((ns, name))
            if have is None:
                self.client.create("endpoints", ns, want)
                self._act(f"endpoints: created {ns}/{name} {_addresses(want)}")
            elif have.get("subsets") != want.get("subsets") or \
                    (meta(have).get("labels") or {}) != want["metadata"]["labels"]:
                body = {**have, "metadata": {**meta(have), "labels": want["metadata"]["labels"]}}
                body.pop("subsets", None)
                if want.get("subsets"):
                    body["subsets"] = want["subsets"]
                self.client.replace("endpoints", ns, name, body)
                self._act(f"endpoints: updated {ns}/{name} {_addresses(want)}")
            self._sync_slices(svc, pods, [s for s in slices if meta(s)["namespace"] == ns and
                                          (meta(s).get("labels") or {}).get(logic.SERVICE_NAME_LABEL) == name])

    # ---- the API server's own endpoint reconciler (pkg/controlplane/reconcilers) ----
    def sync_kubernetes_endpoints(self) -> None:
        """Endpoints and EndpointSlice ``default/kubernetes`` -> the API server's address.

        What kube-apiserver's lease endpoint reconciler writes through
        endpointsadapter.go (the emulator does not do it itself).
        """
        ip, port = self.apiserver_endpoint
        want_eps, want_slice = logic.kubernetes_endpoints(ip, port)
        have = self.client.get("endpoints", "default", "kubernetes")
        if have is None:
            self.client.create("endpoints", "default", want_eps)
            self._act(f"apiserver endpoints: created default/kubernetes {ip}:{port}")
        elif have.get("subsets") != want_eps["subsets"]:
            self.client.replace("endpoints", "default", "kubernetes", {**have, "subsets": want_eps["subsets"]})
            self._act(f"apiserver endpoints: updated default/kubernetes {ip}:{port}")
        have = self.client.get("endpointslices", "default", "kubernetes")
        if have is None:
            self.client.create("endpointslices", "default", want_slice)
            self._act(f"apiserver endpoints: created endpointslice default/kubernetes {ip}:{port}")
        elif (have.get("endpoints"), have.get("ports"), meta(have).get("labels")) != \
                (want_slice["endpoints"], want_slice["ports"], want_slice["metadata"]["labels"]):
            body = {**have, "endpoints": want_slice["endpoints"], "ports": want_slice["ports"],
                    "metadata": {**meta(have), "labels": want_slice["metadata"]["labels"]}}
            self.client.replace("endpointslices", "default", "kubernetes", body)
            self._act(f"apiserver endpoints: updated endpointslice default/kubernetes {ip}:{port}")

    def _sync_slices(self, svc, pods, have) -> None:
        ns, name = meta(svc)["namespace"], meta(svc)["name"]
        want = logic.slice_bodies(svc, pods)
        have = sorted(have, key=lambda s: meta(s)["name"])
        for index, body in enumerate(want):
            if index < len(have):
                cur = have[index]
                same = (cur.get("endpoints") or []) == body["endpoints"] and cur.get("ports") == body.get("ports") \
                    and (meta(cur).get("labels") or {}) == body["metadata"]["labels"]
                if same:
                    continue
                new = {**cur, "metadata": {**meta(cur), "labels": body["metadata"]["labels"]},
                       "endpoints": body["endpoints"]}
                new.pop("ports", None)
                if "ports" in body:
                    new["ports"] = body["ports"]
                self.client.replace("endpointslices", ns, meta(cur)["name"], new)
                self._act(f"endpointslice: updated {ns}/{meta(cur)['name']} {_slice_addresses(body)}")
            else:
                body = copy.deepcopy(body)
                body["metadata"]["generateName"] = f"{name}-"
                made = self.client.create("endpointslices", ns, body)
                self._act(f"endpointslice: created {ns}/{meta(made)['name']} {_slice_addresses(body)}")
        for extra in have[len(want):]:
            self.client.delete("endpointslices", ns, meta(extra)["name"])
            self._act(f"endpointslice: deleted {ns}/{meta(extra)['name']}")


def _stable(status: dict[str, Any]) -> dict[str, Any]:
    """Status without condition timestamps' lastUpdateTime (compared by the rest)."""
    out = copy.deepcopy(status)
    for cond in out.get("conditions") or []:
        cond.pop("lastUpdateTime", None)
        cond.pop("lastTransitionTime", None)
    return out


def _summary(status: dict[str, Any]) -> str:
    fields = ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas")
    return " ".join(f"{f}={status.get(f, 0)}" for f in fields if f in status or f == "replicas")


def _addresses(ep: dict[str, Any]) -> str:
    ready = [a["ip"] for s in ep.get("subsets") or [] for a in s.get("addresses") or []]
    not_ready = [a["ip"] for s in ep.get("subsets") or [] for a in s.get("notReadyAddresses") or []]
    return f"ready={ready} notReady={not_ready}"


def _slice_addresses(body: dict[str, Any]) -> str:
    return "endpoints=" + str([(e["addresses"][0], e["conditions"]["ready"]) for e in body.get("endpoints") or []])
