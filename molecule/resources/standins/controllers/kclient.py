# TEST DOUBLE - used only by kubelab's molecule/resources and tests, never by the roles.
"""A very small Kubernetes REST client (stdlib + PyYAML) for the stand-ins.

Reads a kubeconfig (server, certificate-authority[-data],
insecure-skip-tls-verify, token, client-certificate/key[-data]) and speaks
JSON to the API server: list, get, create, merge-patch (main resource or
``/status``), delete. Errors are :class:`ApiError` with the HTTP code and
the server's Status message.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import yaml

# (group/version prefix, plural) of every resource the stand-ins use
RESOURCES = {
    "nodes": ("/api/v1", "nodes", False),
    "pods": ("/api/v1", "pods", True),
    "services": ("/api/v1", "services", True),
    "endpoints": ("/api/v1", "endpoints", True),
    "namespaces": ("/api/v1", "namespaces", False),
    "configmaps": ("/api/v1", "configmaps", True),
    "deployments": ("/apis/apps/v1", "deployments", True),
    "replicasets": ("/apis/apps/v1", "replicasets", True),
    "endpointslices": ("/apis/discovery.k8s.io/v1", "endpointslices", True),
}


class ApiError(Exception):
    def __init__(self, code: int, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class Client:
    """JSON over HTTP(S) to one API server, configured from a kubeconfig."""

    def __init__(self, kubeconfig: str, timeout: float = 10.0):
        with open(kubeconfig, encoding="utf-8") as handle:
            config = yaml.safe_load(handle) or {}
        current = config.get("current-context")
        contexts = {c["name"]: c.get("context") or {} for c in config.get("contexts") or []}
        context = contexts.get(current) or (next(iter(contexts.values())) if contexts else {})
        clusters = {c["name"]: c.get("cluster") or {} for c in config.get("clusters") or []}
        users = {u["name"]: u.get("user") or {} for u in config.get("users") or []}
        cluster = clusters.get(context.get("cluster")) or {}
        user = users.get(context.get("user")) or {}
        self.server = str(cluster.get("server", "")).rstrip("/")
        if not self.server:
            raise ValueError(f"{kubeconfig}: no cluster server for context {current!r}")
        self.timeout = timeout
        self.headers = {"Accept": "application/json"}
        if user.get("token"):
            self.headers["Authorization"] = f"Bearer {user['token']}"
        self._tmp: list[str] = []
        self.context = None
        if self.server.startswith("https://"):
            if cluster.get("insecure-skip-tls-verify"):
                ctx = ssl.create_default_context()
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            else:
                cafile = self._file(cluster, "certificate-authority", kubeconfig)
                ctx = ssl.create_default_context(cafile=cafile)
            cert = self._file(user, "client-certificate", kubeconfig)
            key = self._file(user, "client-key", kubeconfig)
            if cert:
                ctx.load_cert_chain(cert, key)
            self.context = ctx

    def _file(self, section: dict[str, Any], name: str, kubeconfig: str) -> str | None:
        if section.get(name + "-data"):
            fd, path = tempfile.mkstemp(prefix="kclient-")
            with os.fdopen(fd, "wb") as handle:
                handle.write(base64.b64decode(section[name + "-data"]))
            self._tmp.append(path)
            return path
        if section.get(name):
            return os.path.join(os.path.dirname(os.path.abspath(kubeconfig)), section[name])
        return None

    def close(self) -> None:
        for path in self._tmp:
            try:
                os.unlink(path)
            except OSError:
                pass
        self._tmp = []

    # ---- paths ----------------------------------------------------------
    @staticmethod
    def path(kind: str, namespace: str | None = None, name: str | None = None, sub: str | None = None) -> str:
        prefix, plural, namespaced = RESOURCES[kind]
        parts = [prefix]
        if namespaced and namespace:
            parts.append(f"namespaces/{urllib.parse.quote(namespace)}")
        parts.append(plural)
        if name:
            parts.append(urllib.parse.quote(name))
        if sub:
            parts.append(sub)
        return "/".join(parts)

    # ---- verbs ------------------------------------------------------------
    def request(self, method: str, path: str, body: Any = None, content_type: str = "application/json") -> Any:
        data = None
        headers = dict(self.headers)
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = content_type
        req = urllib.request.Request(self.server + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout, context=self.context) as resp:  # noqa: S310
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                message = json.loads(raw).get("message") or raw.decode(errors="replace")
            except ValueError:
                message = raw.decode(errors="replace")
            raise ApiError(exc.code, message) from None
        return json.loads(raw) if raw else None

    def list(self, kind: str, namespace: str | None = None, label_selector: str | None = None) -> list[dict[str, Any]]:
        path = self.path(kind, namespace)
        if label_selector:
            path += "?" + urllib.parse.urlencode({"labelSelector": label_selector})
        return list((self.request("GET", path) or {}).get("items") or [])

    def get(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        try:
            return self.request("GET", self.path(kind, namespace, name))
        except ApiError as exc:
            if exc.code == 404:
                return None
            raise

    def create(self, kind: str, namespace: str | None, body: dict[str, Any]) -> dict[str, Any]:
        return self.request("POST", self.path(kind, namespace), body)

    def patch(self, kind: str, namespace: str | None, name: str, body: dict[str, Any],
              sub: str | None = None) -> dict[str, Any]:
        return self.request("PATCH", self.path(kind, namespace, name, sub), body,
                            content_type="application/merge-patch+json")

    def replace(self, kind: str, namespace: str | None, name: str, body: dict[str, Any],
                sub: str | None = None) -> dict[str, Any]:
        return self.request("PUT", self.path(kind, namespace, name, sub), body)

    def delete(self, kind: str, namespace: str | None, name: str) -> None:
        try:
            self.request("DELETE", self.path(kind, namespace, name))
        except ApiError as exc:
            if exc.code != 404:
                raise
