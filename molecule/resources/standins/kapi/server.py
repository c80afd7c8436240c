# TEST DOUBLE - used only by kubelab's molecule/resources and tests, never by the roles.
"""A small Kubernetes API server for tests, built over ``kmock``.

kmock (PyPI) supplies the API discovery documents and the catalogue of
built-in resources (kind, scope, verbs, subresources). This adapter owns the
object store and the REST verbs, because kmock's own store cannot serve
Namespaces, PUT, resourceVersion/uid/creationTimestamp, typed list responses
or patch semantics (see README.md). Nothing here reconciles anything: there
are no controllers, no scheduler, no authentication; pods/exec and pods/log
are forwarded to the kubelet stand-in (streams.py).
"""

from __future__ import annotations

import asyncio
import copy
import datetime
import ipaddress
import json
import os
import re
import tempfile
import uuid
import warnings
from typing import Any

import aiohttp.web
import jsonpatch
import kmock

from . import merge, proto, streams, tables, validate

VERSION = {
    "major": "1",
    "minor": "35",
    "gitVersion": "v1.35.0",
    "gitCommit": "kubelab-standin",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.25.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}
DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
# Resources whose status a create keeps (the kubelet creates its Node with status).
KEEP_STATUS_ON_CREATE = {("", "nodes")}


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def response(self) -> aiohttp.web.Response:
        body = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if not self.reason:  # StatusReasonUnknown is "" and omitted
            del body["reason"]
        if self.details:
            body["details"] = self.details
        return aiohttp.web.json_response(body, status=self.code)


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Resource:
    """One served resource: group, version, plural and its kmock info."""

    def __init__(self, res: kmock.resource, info: kmock.ResourceInfo):
        self.group, self.version, self.plural = res.group or "", res.version, res.plural
        self.kind = info.kind or res.plural.capitalize()
        self.namespaced = bool(info.namespaced)
        self.subresources = set(info.subresources)
        self.verbs = set(info.verbs)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def store_key(self) -> tuple[str, str]:
        return (self.group, self.plural)

    @property
    def qualified(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def not_found(self, name: str) -> ApiError:
        return ApiError(404, "NotFound", f'{self.qualified} "{name}" not found',
                        {"name": name, "group": self.group, "kind": self.plural})


def parse_selector(text: str) -> list[tuple[str, str, Any]]:
    """Label selector terms: k=v, k==v, k!=v, k in (a,b), k notin (a,b), k, !k."""
    terms: list[tuple[str, str, Any]] = []
    for part in re.findall(r"(?:[^,(]|\([^)]*\))+", text or ""):
        part = part.strip()
        if not part:
            continue
        m = re.fullmatch(r"(\S+)\s+(in|notin)\s+\((.*)\)", part)
        if m:
            terms.append((m.group(1), m.group(2), {v.strip() for v in m.group(3).split(",")}))
            continue
        m = re.fullmatch(r"([^=!\s]+)\s*(==|=|!=)\s*(\S*)", part)
        if m:
            terms.append((m.group(1), "!=" if m.group(2) == "!=" else "=", m.group(3)))
        elif part.startswith("!"):
            terms.append((part[1:].strip(), "!exists", None))
        else:
            terms.append((part, "exists", None))
    return terms


def match_selector(terms: list[tuple[str, str, Any]], values: dict[str, str]) -> bool:
    for key, op, want in terms:
        have = values.get(key)
        if op == "=":
            ok = have == want
        elif op == "!=":
            ok = have != want
        elif op == "in":
            ok = have is not None and have in want
        elif op == "notin":
            ok = have is None or have not in want
        elif op == "exists":
            ok = key in values
        else:
            ok = key not in values
        if not ok:
            return False
    return True


def field_values(obj: dict[str, Any], terms: list[tuple[str, str, Any]]) -> dict[str, str]:
    values: dict[str, str] = {}
    for key, _, _ in terms:
        cur: Any = obj
        for part in key.split("."):
            cur = cur.get(part) if isinstance(cur, dict) else None
        if cur is not None:
            values[key] = str(cur)
    return values


class KapiServer:
    """The adapter: an aiohttp handler in front of a kmock emulator."""

    def __init__(self, state_file: str | None = None, service_cidr: str = "10.96.0.0/12",
                 node_port_range: tuple[int, int] = (30000, 32767), allow_special_external_ips: bool = False,
                 exec_timeout: float = 60.0):
        self.emulator = kmock.KubernetesEmulator()
        with warnings.catch_warnings():  # kmock 0.8 uses a deprecated importlib.resources call
            warnings.simplefilter("ignore", DeprecationWarning)
            self.emulator.resources.load_bundled()
        self.resources: dict[tuple[str, str, str], Resource] = {
            (r.group or "", r.version, r.plural): Resource(r, self.emulator.resources[r])
            for r in self.emulator.resources
        }
        self.state_file = state_file
        self.service_net = ipaddress.ip_network(service_cidr)
        self.node_ports = node_port_range
        # Tests only (README "Validation"): accept special externalIPs.
        self.allow_special_external_ips = allow_special_external_ips
        self.rv = 0
        # (group, plural) -> {(namespace or "", name): object}
        self.objects: dict[tuple[str, str], dict[tuple[str, str], dict[str, Any]]] = {}
        self.applied: dict[str, Any] = {}  # "group/plural/ns/name/manager" -> last applied config
        self.events: list[tuple[int, tuple[str, str], str, dict[str, Any]]] = []
        self.watchers: set[asyncio.Queue] = set()
        # pods/exec and pods/log, forwarded to the kubelet stand-in (README "Exec and logs")
        self.streams = streams.Streams(self, exec_timeout=exec_timeout)
        self._load()
        self._bootstrap()

    # ----------------------------------------------------------- persistence
    def _load(self) -> None:
        if not self.state_file or not os.path.exists(self.state_file):
            return
        with open(self.state_file, encoding="utf-8") as fh:
            state = json.load(fh)
        self.rv = state["resourceVersion"]
        self.applied = state.get("applied", {})
        for group, plural, ns, name, obj in state["objects"]:
            self.objects.setdefault((group, plural), {})[(ns, name)] = obj

    def _save(self) -> None:
        if not self.state_file:
            return
        state = {
            "resourceVersion": self.rv,
            "applied": self.applied,
            "objects": [
                [group, plural, ns, name, obj]
                for (group, plural), objs in self.objects.items()
                for (ns, name), obj in objs.items()
            ],
        }
        directory = os.path.dirname(os.path.abspath(self.state_file))
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".kapi-state.")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(state, fh)
        os.replace(tmp, self.state_file)

    def _bootstrap(self) -> None:
        ns_res = self.resources[("", "v1", "namespaces")]
        for name in DEFAULT_NAMESPACES:
            if ("", name) not in self.objects.get(ns_res.store_key, {}):
                self._create(ns_res, None, {"metadata": {"name": name}}, {})
        svc_res = self.resources[("", "v1", "services")]
        if ("default", "kubernetes") not in self.objects.get(svc_res.store_key, {}):
            first = str(next(self.service_net.hosts()))
            self._create(svc_res, "default", {
                "metadata": {"name": "kubernetes", "labels": {"component": "apiserver", "provider": "kubernetes"}},
                "spec": {"clusterIP": first, "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}]},
            }, {})

    # ----------------------------------------------------------- routing
    def app(self) -> aiohttp.web.Application:
        app = aiohttp.web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    async def handle(self, request: aiohttp.web.Request) -> aiohttp.web.StreamResponse:
        try:
            return await self._dispatch(request)
        except ApiError as exc:
            return exc.response()
        except (ValueError, KeyError, TypeError, jsonpatch.JsonPatchException) as exc:
            return ApiError(400, "BadRequest", f"{type(exc).__name__}: {exc}").response()

    async def _dispatch(self, request: aiohttp.web.Request) -> aiohttp.web.StreamResponse:
        path = request.path.rstrip("/") or "/"
        parts = path.strip("/").split("/") if path != "/" else []
        if path in ("/healthz", "/readyz", "/livez"):
            return aiohttp.web.Response(text="ok")
        if path == "/version":
            return aiohttp.web.json_response(VERSION)
        if parts[:2] == ["openapi", "v3"]:
            return aiohttp.web.json_response(self._openapi_v3("/".join(parts[2:])))
        if parts[:1] == ["api"] and len(parts) >= 2:
            group, version, rest = "", parts[1], parts[2:]
        elif parts[:1] == ["apis"] and len(parts) >= 3:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            rest = None
        if rest == []:
            return await self._discovery_version(request, group, version)
        if rest is None:
            return await self._delegate(request)
        return await self._resource_request(request, group, version, rest)

    async def _delegate(self, request: aiohttp.web.Request) -> aiohttp.web.StreamResponse:
        """Discovery (/, /api, /apis, /apis/GROUP) as kmock serves it."""
        if request.method != "GET":
            raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
        try:
            response = await self.emulator(request)
        except kmock.KubernetesError as exc:
            raise ApiError(404, "NotFound", "the server could not find the requested resource") from exc
        if response.status == 404:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return response

    async def _discovery_version(self, request: aiohttp.web.Request, group: str, version: str) -> aiohttp.web.StreamResponse:
        """APIResourceList from kmock; kmock reports groupVersion "/v1" for the core group."""
        response = await self._delegate(request)
        body = json.loads(response.body)
        body["groupVersion"] = f"{group}/{version}" if group else version
        for entry in body.get("resources", []):
            entry["namespaced"] = bool(entry.get("namespaced"))
            if "/" in entry["name"]:
                # kmock copies the parent's short names and categories onto
                # subresources, which makes kubectl's short names ambiguous.
                entry.update(singularName="", shortNames=[], categories=[], verbs=["get", "patch", "update"])
        return aiohttp.web.json_response(body)

    def _openapi_v3(self, gv_path: str) -> dict[str, Any]:
        """Just enough OpenAPI v3 for kubectl to see that PATCH takes the
        fieldValidation parameter (so it sends it instead of downloading
        schemas to validate client-side). No schemas: fields are not validated."""
        gvs = sorted({(r.group, r.version) for r in self.resources.values()})
        if not gv_path:
            return {"paths": {
                (f"apis/{g}/{v}" if g else f"api/{v}"): {"serverRelativeURL": "/openapi/v3/" + (f"apis/{g}/{v}" if g else f"api/{v}")}
                for g, v in gvs
            }}
        bits = gv_path.split("/")
        group, version = ("", bits[1]) if bits[0] == "api" and len(bits) == 2 else (
            (bits[1], bits[2]) if bits[0] == "apis" and len(bits) == 3 else (None, None))
        if (group, version) not in gvs:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        paths = {}
        for r in self.resources.values():
            if (r.group, r.version) != (group, version):
                continue
            prefix = f"/apis/{group}/{version}" if group else f"/api/{version}"
            scope = "/namespaces/{namespace}" if r.namespaced else ""
            paths[f"{prefix}{scope}/{r.plural}/{{name}}"] = {"patch": {
                "x-kubernetes-group-version-kind": {"group": group, "version": version, "kind": r.kind},
                "parameters": [{"name": "fieldValidation", "in": "query", "schema": {"type": "string"}}],
                "responses": {},
            }}
        return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": VERSION["gitVersion"]}, "paths": paths}

    def _resource(self, group: str, version: str, plural: str) -> Resource:
        res = self.resources.get((group, version, plural))
        if res is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return res

    async def _resource_request(self, request: aiohttp.web.Request, group: str, version: str,
                                rest: list[str]) -> aiohttp.web.StreamResponse:
        namespace = None
        # /namespaces/NAME[/SUB] is the Namespace itself unless SUB is a resource.
        if rest[0] == "namespaces" and len(rest) >= 3 and not (group == "" and rest[2] in ("status", "finalize") and len(rest) == 3):
            namespace, rest = rest[1], rest[2:]
        plural = rest[0]
        name = rest[1] if len(rest) > 1 else None
        sub = "/".join(rest[2:]) or None
        res = self._resource(group, version, plural)
        if namespace is not None and not res.namespaced:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if res.store_key == ("", "pods") and name and namespace and sub in ("exec", "log"):
            if sub == "exec" and request.method in ("GET", "POST"):
                return await self.streams.exec(request, namespace, name)
            if sub == "log" and request.method == "GET":
                return await self.streams.log(request, namespace, name)
            raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
        if sub is not None and sub not in ("status",):
            raise ApiError(405, "MethodNotAllowed", f"subresource {sub!r} is not served by this test double")
        q = request.query
        dry_run = "All" in q.getall("dryRun", [])
        method = request.method
        if name is None:
            if method == "GET":
                if q.get("watch") in ("true", "1"):
                    return await self._watch(request, res, namespace, q)
                listing = self._list(res, namespace, q)
                if _wants_table(request):
                    return aiohttp.web.json_response(tables.table(res.kind, res.api_version, listing["items"],
                                                                  listing["metadata"]["resourceVersion"]))
                return aiohttp.web.json_response(listing)
            if method == "POST":
                body = await self._body(request)
                return aiohttp.web.json_response(self._create(res, namespace, body, q, dry_run), status=201)
            raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
        if method == "GET":
            obj = self._present(res, self._get(res, namespace, name))
            if _wants_table(request) and sub is None:
                return aiohttp.web.json_response(tables.table(res.kind, res.api_version, [obj], str(self.rv)))
            return aiohttp.web.json_response(obj)
        if method == "PUT":
            body = await self._body(request)
            return aiohttp.web.json_response(self._update(res, namespace, name, body, sub, dry_run))
        if method == "PATCH":
            ctype = request.content_type
            raw = await request.text()
            return aiohttp.web.json_response(self._patch(res, namespace, name, ctype, raw, sub, q, dry_run))
        if method == "DELETE":
            return aiohttp.web.json_response(self._delete(res, namespace, name, dry_run))
        raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")

    @staticmethod
    async def _body(request: aiohttp.web.Request) -> dict[str, Any]:
        if "protobuf" in request.content_type:
            try:
                return proto.decode(await request.read())
            except proto.ProtoError as exc:
                raise ApiError(415, "UnsupportedMediaType", str(exc)) from exc
        text = await request.text()
        try:
            body = json.loads(text)
        except json.JSONDecodeError:
            body = _yaml_load(text)
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "the request body is not an object")
        return body

    # ----------------------------------------------------------- store helpers
    def _store(self, res: Resource) -> dict[tuple[str, str], dict[str, Any]]:
        return self.objects.setdefault(res.store_key, {})

    def _get(self, res: Resource, namespace: str | None, name: str) -> dict[str, Any]:
        obj = self._store(res).get((namespace or "", name))
        if obj is None:
            raise res.not_found(name)
        return obj

    def _present(self, res: Resource, obj: dict[str, Any]) -> dict[str, Any]:
        out = copy.deepcopy(obj)
        out["apiVersion"] = res.api_version
        out["kind"] = res.kind
        return out

    def _check_namespace(self, res: Resource, namespace: str | None) -> None:
        if res.namespaced:
            if not namespace:
                raise ApiError(400, "BadRequest", "the namespace of the object is not set")
            if ("", namespace) not in self.objects.get(("", "namespaces"), {}):
                raise ApiError(404, "NotFound", f'namespaces "{namespace}" not found',
                               {"name": namespace, "kind": "namespaces"})

    def _commit(self, res: Resource, event: str, obj: dict[str, Any], dry_run: bool) -> dict[str, Any]:
        if dry_run:
            return self._present(res, obj)
        meta = obj["metadata"]
        key = (meta.get("namespace", ""), meta["name"])
        if event == "DELETED":
            self._store(res).pop(key, None)
        else:
            self._store(res)[key] = obj
        self._save()
        presented = self._present(res, obj)
        self.events.append((self.rv, res.store_key, event, presented))
        del self.events[:-2000]
        for queue in list(self.watchers):
            queue.put_nowait((self.rv, res.store_key, event, presented))
        return presented

    def _next_rv(self, dry_run: bool) -> str:
        if dry_run:
            return str(self.rv)
        self.rv += 1
        return str(self.rv)

    # ----------------------------------------------------------- verbs
    def _list(self, res: Resource, namespace: str | None, q: Any) -> dict[str, Any]:
        labels = parse_selector(q.get("labelSelector", ""))
        fields = parse_selector(q.get("fieldSelector", ""))
        items = []
        for (ns, _name), obj in sorted(self._store(res).items()):
            if namespace is not None and ns != namespace:
                continue
            if not match_selector(labels, obj["metadata"].get("labels") or {}):
                continue
            if fields and not match_selector(fields, field_values(obj, fields)):
                continue
            items.append(self._present(res, obj))
        return {
            "kind": f"{res.kind}List",
            "apiVersion": res.api_version,
            "metadata": {"resourceVersion": str(self.rv)},
            "items": items,
        }

    def _create(self, res: Resource, namespace: str | None, body: dict[str, Any], q: Any,
                dry_run: bool = False) -> dict[str, Any]:
        obj = copy.deepcopy(body)
        meta = obj.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
        name = meta.get("name")
        if not name:
            raise ApiError(422, "Invalid", f"{res.kind} \"\" is invalid: metadata.name: Required value: name or generateName is required")
        if body.get("kind") not in (None, res.kind):
            raise ApiError(400, "BadRequest", f"the body kind {body.get('kind')!r} does not match the resource {res.qualified}")
        if res.namespaced:
            body_ns = meta.get("namespace")
            if namespace and body_ns and body_ns != namespace:
                raise ApiError(400, "BadRequest", "the namespace of the provided object does not match the namespace sent on the request")
            namespace = namespace or body_ns
            self._check_namespace(res, namespace)
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        if (namespace or "", name) in self._store(res):
            raise ApiError(409, "AlreadyExists", f'{res.qualified} "{name}" already exists',
                           {"name": name, "group": res.group, "kind": res.plural})
        for field in ("resourceVersion", "deletionTimestamp", "managedFields"):
            meta.pop(field, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = _now()
        meta["generation"] = 1
        meta["resourceVersion"] = self._next_rv(dry_run)
        if res.store_key not in KEEP_STATUS_ON_CREATE:
            obj.pop("status", None)
        obj.pop("apiVersion", None)
        obj.pop("kind", None)
        errors = self._defaults(res, obj, None)
        self._validate(res, obj, None, errors)
        return self._commit(res, "ADDED", obj, dry_run)

    def _defaults(self, res: Resource, obj: dict[str, Any], old: dict[str, Any] | None) -> list[validate.FieldError]:
        """Defaulting and allocation; returns validation errors found on the way."""
        if res.store_key == ("", "namespaces"):
            obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
            obj.setdefault("status", {"phase": "Active"})
            obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = obj["metadata"]["name"]
        elif res.store_key == ("", "services"):
            return self._service_defaults(obj, old)
        return []

    def _invalid(self, res: Resource, obj: dict[str, Any], errors: list[validate.FieldError]) -> ApiError:
        message, details = validate.invalid_status(res.kind, res.group, obj["metadata"]["name"], errors)
        return ApiError(422, "Invalid", message, details)

    def _validate(self, res: Resource, obj: dict[str, Any], old: dict[str, Any] | None,
                  errors: list[validate.FieldError]) -> None:
        """The strategy's Validate/ValidateUpdate: 422 Invalid with every field error."""
        errors = list(errors)
        old_spec = (old or {}).get("spec") if old is not None else None
        if res.store_key == ("", "services"):
            errors = validate.service(obj.get("spec") or {}, old_spec, errors,
                                      special_ips=not self.allow_special_external_ips)
        elif res.store_key in validate.SELECTOR_KINDS and res.version == "v1":
            errors += validate.workload(res.plural, obj.get("spec") or {}, old_spec)
        if errors:
            raise self._invalid(res, obj, errors)

    def _service_defaults(self, obj: dict[str, Any], old: dict[str, Any] | None) -> list[validate.FieldError]:
        spec = obj.setdefault("spec", {})
        old_spec = (old or {}).get("spec", {})
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        if spec["type"] != "ExternalName":
            if not spec.get("clusterIP") and old_spec.get("clusterIP"):
                spec["clusterIP"] = old_spec["clusterIP"]
            if not spec.get("clusterIP"):
                used = {s.get("spec", {}).get("clusterIP") for s in self._store(self.resources[("", "v1", "services")]).values()}
                for host in self.service_net.hosts():
                    if str(host) not in used:
                        spec["clusterIP"] = str(host)
                        break
            spec["clusterIPs"] = [spec["clusterIP"]]
            spec.setdefault("ipFamilies", ["IPv4"])
            spec.setdefault("ipFamilyPolicy", "SingleStack")
            spec.setdefault("internalTrafficPolicy", "Cluster")
        old_ports = {p.get("port"): p for p in old_spec.get("ports") or []}
        old_node_ports = {p.get("nodePort") for p in old_spec.get("ports") or [] if p.get("nodePort")}
        name = obj["metadata"]["name"]
        namespace = obj["metadata"].get("namespace", "")
        used_np = {
            p.get("nodePort")
            for (ns, other), s in self._store(self.resources[("", "v1", "services")]).items()
            if (ns, other) != (namespace, name)
            for p in s.get("spec", {}).get("ports") or []
        }
        forbidden: list[validate.FieldError] = []
        for index, port in enumerate(spec.get("ports") or []):
            port.setdefault("protocol", "TCP")
            port.setdefault("targetPort", port.get("port"))
            if spec["type"] in ("NodePort", "LoadBalancer"):
                spec.setdefault("externalTrafficPolicy", "Cluster")
                if not port.get("nodePort"):
                    previous = old_ports.get(port.get("port"), {}).get("nodePort")
                    if previous:
                        port["nodePort"] = previous
                    else:
                        port["nodePort"] = next(
                            n for n in range(self.node_ports[0], self.node_ports[1] + 1) if n not in used_np
                        )
                elif port["nodePort"] not in old_node_ports:
                    # the allocator (BeginCreate/BeginUpdate) refuses before validation runs
                    err = validate.node_port_allocation(index, port["nodePort"], self.node_ports[0],
                                                        self.node_ports[1], port["nodePort"] in used_np)
                    if err:
                        raise self._invalid(self.resources[("", "v1", "services")], obj, [err])
                used_np.add(port["nodePort"])
            else:
                # dropTypeDependentFields clears a nodePort the user did not change; a new one is refused
                if spec["type"] == "ClusterIP" and port.get("nodePort") and port["nodePort"] not in old_node_ports:
                    forbidden.append(validate.FieldError(
                        validate.FORBIDDEN, f"spec.ports[{index}].nodePort", None,
                        "may not be used when `type` is 'ClusterIP'"))
                port.pop("nodePort", None)
        if spec["type"] == "LoadBalancer":
            obj.setdefault("status", {}).setdefault("loadBalancer", {})
        return forbidden

    def _replace(self, res: Resource, old: dict[str, Any], new: dict[str, Any], sub: str | None,
                 dry_run: bool) -> dict[str, Any]:
        """Store ``new`` in place of ``old`` with the API server's invariants."""
        new = copy.deepcopy(new)
        new.pop("apiVersion", None)
        new.pop("kind", None)
        meta = new.setdefault("metadata", {})
        old_meta = old["metadata"]
        if sub == "status":
            new = {**copy.deepcopy(old), "status": new.get("status", {})}
            meta = new["metadata"]
        else:
            if "status" in old:
                new["status"] = copy.deepcopy(old["status"])
            else:
                new.pop("status", None)
        for field in ("name", "namespace", "uid", "creationTimestamp", "deletionTimestamp", "generation"):
            if field in old_meta:
                meta[field] = old_meta[field]
            else:
                meta.pop(field, None)
        meta.pop("resourceVersion", None)
        meta.pop("managedFields", None)
        errors = self._defaults(res, new, old)
        if sub != "status":
            self._validate(res, new, old, errors)
        compare_old = {k: v for k, v in old.items()}
        compare_old["metadata"] = {k: v for k, v in old_meta.items() if k != "resourceVersion"}
        if new == compare_old:
            return self._present(res, old)  # no-op: nothing stored, resourceVersion unchanged
        strip = ("metadata", "status")
        if {k: v for k, v in new.items() if k not in strip} != {k: v for k, v in old.items() if k not in strip}:
            meta["generation"] = old_meta.get("generation", 1) + 1
        meta["resourceVersion"] = self._next_rv(dry_run)
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            return self._commit(res, "DELETED", new, dry_run)
        return self._commit(res, "MODIFIED", new, dry_run)

    def _update(self, res: Resource, namespace: str | None, name: str, body: dict[str, Any],
                sub: str | None, dry_run: bool) -> dict[str, Any]:
        old = self._get(res, namespace, name)
        meta = body.get("metadata") or {}
        if meta.get("name") not in (None, name):
            raise ApiError(400, "BadRequest", "the name of the object does not match the name on the URL")
        rv = meta.get("resourceVersion")
        if rv and rv != old["metadata"]["resourceVersion"]:
            raise ApiError(409, "Conflict",
                           f'Operation cannot be fulfilled on {res.qualified} "{name}": the object has been modified; '
                           "please apply your changes to the latest version and try again",
                           {"name": name, "group": res.group, "kind": res.plural})
        return self._replace(res, old, body, sub, dry_run)

    def _patch(self, res: Resource, namespace: str | None, name: str, ctype: str, raw: str,
               sub: str | None, q: Any, dry_run: bool) -> dict[str, Any]:
        store = self._store(res)
        old = store.get((namespace or "", name))
        if ctype == "application/apply-patch+yaml":
            applied = json.loads(raw) if raw.lstrip().startswith("{") else _yaml_load(raw)
            manager = q.get("fieldManager", "")
            key = "/".join([res.group, res.plural, namespace or "", name, manager, sub or ""])
            if old is None:
                if sub:
                    raise res.not_found(name)
                applied.setdefault("metadata", {})["name"] = name
                result = self._create(res, namespace, applied, q, dry_run)
            else:
                base = self._present(res, old)
                new = merge.apply_patch(base, applied, self.applied.get(key))
                result = self._replace(res, old, new, sub, dry_run)
            if not dry_run:
                self.applied[key] = applied
                self._save()
            return result
        if old is None:
            raise res.not_found(name)
        base = self._present(res, old)
        patch = json.loads(raw)
        if ctype == "application/json-patch+json":
            new = jsonpatch.apply_patch(base, patch)
        elif ctype == "application/merge-patch+json":
            new = merge.json_merge_patch(base, patch)
        elif ctype == "application/strategic-merge-patch+json":
            new = merge.strategic_merge_patch(base, patch)
        else:
            raise ApiError(415, "UnsupportedMediaType", f"the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {ctype})")
        rv = (patch.get("metadata") or {}).get("resourceVersion") if isinstance(patch, dict) else None
        if rv and rv != old["metadata"]["resourceVersion"]:
            raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on {res.qualified} "{name}": the object has been modified; please apply your changes to the latest version and try again')
        return self._replace(res, old, new, sub, dry_run)

    def _delete(self, res: Resource, namespace: str | None, name: str, dry_run: bool) -> dict[str, Any]:
        old = self._get(res, namespace, name)
        if old["metadata"].get("finalizers"):
            new = copy.deepcopy(old)
            new["metadata"].setdefault("deletionTimestamp", _now())
            new["metadata"]["resourceVersion"] = self._next_rv(dry_run)
            return self._commit(res, "MODIFIED", new, dry_run)
        if res.store_key == ("", "namespaces") and not dry_run:
            # No namespace controller: the namespace's content goes at once.
            for key, objs in self.objects.items():
                for (ns, obj_name) in [k for k in objs if k[0] == name]:
                    obj = objs[(ns, obj_name)]
                    owner = next(r for r in self.resources.values() if r.store_key == key)
                    self.rv += 1
                    obj["metadata"]["resourceVersion"] = str(self.rv)
                    self._commit(owner, "DELETED", obj, False)
        gone = copy.deepcopy(old)
        gone["metadata"]["resourceVersion"] = self._next_rv(dry_run)
        return self._commit(res, "DELETED", gone, dry_run)

    async def _watch(self, request: aiohttp.web.Request, res: Resource, namespace: str | None,
                     q: Any) -> aiohttp.web.StreamResponse:
        labels = parse_selector(q.get("labelSelector", ""))
        fields = parse_selector(q.get("fieldSelector", ""))
        timeout = float(q.get("timeoutSeconds") or 1800)
        since = q.get("resourceVersion") or "0"

        def wanted(obj: dict[str, Any]) -> bool:
            meta = obj["metadata"]
            return ((namespace is None or meta.get("namespace") == namespace)
                    and match_selector(labels, meta.get("labels") or {})
                    and (not fields or match_selector(fields, field_values(obj, fields))))

        queue: asyncio.Queue = asyncio.Queue()
        if since == "0":
            backlog = [(self.rv, res.store_key, "ADDED", self._present(res, o))
                       for _, o in sorted(self._store(res).items())]
        else:
            backlog = [e for e in self.events if e[0] > int(since)]
        self.watchers.add(queue)
        response = aiohttp.web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            for event in backlog:
                queue.put_nowait(event)
            while True:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    _rv, key, kind, obj = await asyncio.wait_for(queue.get(), remaining)
                except asyncio.TimeoutError:
                    break
                if key == res.store_key and wanted(obj):
                    obj = dict(obj, apiVersion=res.api_version)
                    await response.write(json.dumps({"type": kind, "object": obj}).encode() + b"\n")
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.watchers.discard(queue)
        return response


def _wants_table(request: aiohttp.web.Request) -> bool:
    return "as=Table" in request.headers.get("Accept", "")


def _yaml_load(text: str) -> Any:
    try:
        import yaml  # noqa: PLC0415 - optional, only for YAML request bodies
    except ImportError as exc:  # pragma: no cover
        raise ApiError(415, "UnsupportedMediaType", "YAML bodies need PyYAML") from exc
    return yaml.safe_load(text)
