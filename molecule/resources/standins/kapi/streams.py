# TEST DOUBLE - used only by kubelab's molecule/resources and tests, never by the roles.
"""pods/exec and pods/log: the API server's side, forwarded to the kubelet
stand-in of the pod's node over the JSON link of docs (wiring "kapi <->
kubelet stand-in link"). See README.md "Exec and logs" for the upstream
sources of every answer and for what differs (no streaming, no stdin).
"""

from __future__ import annotations

import base64
import json
import os
import re
import urllib.parse
from typing import TYPE_CHECKING, Any

import aiohttp
import aiohttp.web

if TYPE_CHECKING:  # pragma: no cover
    from .server import KapiServer

# kube-apiserver --kubelet-port default (pkg/cluster/ports KubeletPort), used
# when the Node reports no daemonEndpoints.kubeletEndpoint.Port.
DEFAULT_KUBELET_PORT = 10250
# kubeadm's --kubelet-preferred-address-types for the API server static pod.
PREFERRED_ADDRESS_TYPES = ("InternalIP", "ExternalIP", "Hostname")

STDOUT, STDERR, ERROR = 1, 2, 3
# Websocket subprotocols: (binary?, status JSON?) -- kubelet's
# pkg/kubelet/cri/streaming/remotecommand/websocket.go (createWebSocketStreams)
# and wsstream.NewDefaultChannelProtocols; v5 is what kube-apiserver's stream
# translator (apiserver pkg/util/proxy/streamtranslator.go) answers itself.
V5 = ("v5.channel.k8s.io", "v5.base64.channel.k8s.io")
PROTOCOLS = {
    "v5.channel.k8s.io": (True, True),
    "v5.base64.channel.k8s.io": (False, True),
    "v4.channel.k8s.io": (True, True),
    "v4.base64.channel.k8s.io": (False, True),
    "channel.k8s.io": (True, False),
    "base64.channel.k8s.io": (False, False),
    "": (True, False),
}
_CONNECTION_UPGRADE = re.compile(r"(^|.*,\s*)upgrade($|\s*,)")


def _go_bool(value: str | None, default: bool) -> bool:
    """strconv.ParseBool as the query-parameter conversion uses it."""
    if value is None:
        return default
    return value in ("1", "t", "T", "TRUE", "true", "True")


def _go_addresses(addresses: list[dict[str, Any]]) -> str:
    """A []v1.NodeAddress as Go's %v prints it: [{InternalIP 10.0.0.1} ...]."""
    return "[" + " ".join("{%s %s}" % (a.get("type", ""), a.get("address", "")) for a in addresses) + "]"


def _status_json(status: dict[str, Any]) -> bytes:
    """metav1.Status as encoding/json writes it (field order of the struct)."""
    out: dict[str, Any] = {"metadata": {}, "status": status["status"]}
    for key in ("message", "reason", "details", "code"):
        if status.get(key):
            out[key] = status[key]
    return json.dumps(out, separators=(",", ":")).encode()


class Streams:
    """exec and log for a KapiServer (shares its store and error type)."""

    def __init__(self, server: "KapiServer", exec_timeout: float = 60.0):
        self.server = server
        self.exec_timeout = exec_timeout

    # ------------------------------------------------------------ helpers
    def _error(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None):
        from .server import ApiError  # noqa: PLC0415 - circular at import time

        return ApiError(code, reason, message, details)

    def _pod(self, namespace: str, name: str) -> dict[str, Any]:
        res = self.server.resources[("", "v1", "pods")]
        return self.server._get(res, namespace, name)

    def _container(self, pod: dict[str, Any], container: str) -> str:
        """pkg/registry/core/pod/strategy.go validateContainer."""
        spec = pod.get("spec") or {}
        name = pod["metadata"]["name"]
        containers = spec.get("containers") or []
        # podutil.VisitContainers order: init, regular, ephemeral
        every = [c.get("name") for key in ("initContainers", "containers", "ephemeralContainers")
                 for c in spec.get(key) or []]
        if not container:
            if len(containers) == 1:
                return containers[0].get("name")
            if not containers:
                raise self._error(400, "BadRequest", f"a container name must be specified for pod {name}")
            raise self._error(400, "BadRequest", f"a container name must be specified for pod {name}, "
                                                 f"choose one of: [{' '.join(every)}]")
        if container not in every:
            raise self._error(400, "BadRequest", f"container {container} is not valid for pod {name}")
        return container

    def _kubelet(self, node_name: str) -> tuple[str, int]:
        """pkg/kubelet/client/kubelet_client.go NodeConnectionInfoGetter.GetConnectionInfo."""
        res = self.server.resources[("", "v1", "nodes")]
        node = self.server._get(res, None, node_name)
        status = node.get("status") or {}
        addresses = status.get("addresses") or []
        host = None
        for kind in PREFERRED_ADDRESS_TYPES:
            host = next((a.get("address") for a in addresses if a.get("type") == kind and a.get("address")), None)
            if host:
                break
        if not host:
            # nodeutil.GetPreferredNodeAddress's NoMatchError: not an API status, so 500 Unknown
            raise self._error(500, "", f"no preferred addresses found; known addresses: {_go_addresses(addresses)}")
        port = int(((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port") or 0)
        if port <= 0:
            port = DEFAULT_KUBELET_PORT
        return host, port

    @staticmethod
    def _hostport(host: str, port: int) -> str:
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    @staticmethod
    def _dial_error(exc: BaseException) -> str:
        """The syscall error as Go's net package words it (connect: connection refused)."""
        err = exc.os_error if isinstance(exc, aiohttp.ClientConnectorError) else exc
        number = getattr(err, "errno", None)
        text = os.strerror(number) if number else str(err)
        return f"connect: {text[:1].lower()}{text[1:]}"

    # ------------------------------------------------------------ exec
    async def exec(self, request: aiohttp.web.Request, namespace: str, name: str) -> aiohttp.web.StreamResponse:
        q = request.query
        pod = self._pod(namespace, name)
        container = self._container(pod, q.get("container", ""))
        node_name = (pod.get("spec") or {}).get("nodeName")
        if not node_name:
            raise self._error(400, "BadRequest", f"pod {name} does not have a host assigned")
        host, port = self._kubelet(node_name)
        # UpgradeAwareHandler with UpgradeRequired (pods/exec): no upgrade header -> 400
        connection = request.headers.get("Connection", "").lower()
        if not _CONNECTION_UPGRADE.match(connection):
            raise self._error(400, "BadRequest", "Upgrade request required")
        spdy = request.headers.get("Upgrade", "").lower() != "websocket"
        offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
        # kube-apiserver translates websocket v5 itself; other requests are
        # proxied to the kubelet, whose wsstream handshake takes the first
        # offered protocol it knows.
        allowed = list(V5) if any(p in V5 for p in offered) else list(PROTOCOLS)
        if spdy:
            protocol = ""
        elif offered:
            protocol = next((p for p in offered if p in allowed), None)
            if protocol is None:
                # golang.org/x/net/websocket: a failed Handshake answers 403
                return aiohttp.web.Response(status=403, text="403 Forbidden\n")
        else:
            protocol = ""
        binary, json_status = PROTOCOLS[protocol]
        command = q.getall("command", [])
        # PodExecOptions' stdin/stdout/stderr default to false; the kubelet's
        # NewOptions (pkg/kubelet/cri/streaming/remotecommand/httpstream.go,
        # release-1.35) refuses a request that asks for none (400)
        stdout, stderr = _go_bool(q.get("stdout"), False), _go_bool(q.get("stderr"), False)
        if not (stdout or stderr or _go_bool(q.get("stdin"), False)):
            return aiohttp.web.Response(status=400, text="you must specify at least 1 of stdin, stdout, stderr\n")
        tty = _go_bool(q.get("tty"), False)
        # The JSON link runs the command to the end before the upgrade: a
        # kubelet error is an HTTP answer, as the real kubelet's is.
        url = f"http://{self._hostport(host, port)}/exec/{urllib.parse.quote(namespace)}/" \
              f"{urllib.parse.quote(name)}/{urllib.parse.quote(container)}"
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.exec_timeout + 15)) as session:
                async with session.post(url, json={"command": command, "timeout": self.exec_timeout}) as resp:
                    code, raw = resp.status, await resp.read()
        except (aiohttp.ClientConnectorError, OSError) as exc:
            raise self._error(500, "", f"error dialing backend: dial tcp {self._hostport(host, port)}: "
                                       f"{self._dial_error(exc)}") from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise self._error(500, "", f"error dialing backend: {exc}") from exc
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {"message": raw.decode(errors="replace")}
        if code != 200:
            return self._exec_refusal(code, body, container)
        if spdy:
            # Only a refusal of the kubelet reaches a SPDY client (as kubectl's
            # fallback after a refused websocket upgrade needs); the output of
            # a command that ran is discarded.
            raise self._error(400, "BadRequest", "SPDY upgrades are not served by this test double (the command "
                                                 "ran; its output is discarded): use websockets "
                                                 "(kubectl >= 1.30, the Python client)")
        ws = aiohttp.web.WebSocketResponse(protocols=[protocol] if protocol else (), autoping=True)
        await ws.prepare(request)

        async def send(channel: int, data: bytes) -> None:
            if binary:
                await ws.send_bytes(bytes([channel]) + data)
            else:
                await ws.send_str(chr(ord("0") + channel) + base64.b64encode(data).decode())

        out = (body.get("stdout") or "").encode()
        err = (body.get("stderr") or "").encode()
        if tty:  # a terminal has one output stream
            out, err = out + err, b""
        if stdout and out:
            await send(STDOUT, out)
        if stderr and err:
            await send(STDERR, err)
        status = self._exec_status(body, protocol)
        if json_status:
            await send(ERROR, _status_json(status))
        elif status["status"] != "Success":
            await send(ERROR, status["message"].encode())  # v1WriteStatusFunc: status.Error()
        await ws.close()
        return ws

    def _exec_status(self, body: dict[str, Any], protocol: str) -> dict[str, Any]:
        rc = body.get("exitCode")
        if body.get("timedOut") or rc is None:
            # exec.go ServeExec: any error that is not an exit is an InternalError
            cause = f"error executing command in container: timed out after {self.exec_timeout:g}s"
            return {"status": "Failure", "message": f"Internal error occurred: {cause}", "reason": "InternalError",
                    "details": {"causes": [{"message": cause}]}, "code": 500}
        if int(rc) == 0:
            return {"status": "Success"}
        if protocol in V5:
            # streamtranslator.go codeExitToStatusError of client-go's CodeExitError
            text = f"command terminated with exit code {int(rc)}"
        else:
            # kubelet exec.go ServeExec of CRI-O's ExitErrorWrapper (os/exec "exit status N")
            text = f"exit status {int(rc)}"
        return {"status": "Failure", "message": f"command terminated with non-zero exit code: {text}",
                "reason": "NonZeroExitCode",
                "details": {"causes": [{"reason": "ExitCode", "message": str(int(rc))}]}}

    @staticmethod
    def _exec_refusal(code: int, body: dict[str, Any], container: str) -> aiohttp.web.Response:
        """The kubelet's own non-upgrade answer, which the API server proxies as is."""
        message = str(body.get("message") or "")
        if code == 409 or (code == 404 and message.startswith("container")):
            # kubelet GetExec: findContainer sees running containers only;
            # a plain error -> streaming.WriteError -> 500 with its text
            return aiohttp.web.Response(status=500, text=f'container not found ("{container}")')
        if code == 404:
            # kubelet server.go getExec: pod unknown to the kubelet
            return aiohttp.web.Response(status=404, text="pod does not exist")
        return aiohttp.web.Response(status=code if code >= 400 else 500, text=message)

    # ------------------------------------------------------------ log
    async def log(self, request: aiohttp.web.Request, namespace: str, name: str) -> aiohttp.web.StreamResponse:
        q = request.query
        pod = self._pod(namespace, name)
        container = self._container(pod, q.get("container", ""))
        node_name = (pod.get("spec") or {}).get("nodeName")
        if not node_name:
            # LogLocation returns no location: an empty stream
            return aiohttp.web.Response(text="", content_type="text/plain")
        host, port = self._kubelet(node_name)
        params = []
        for key in ("previous", "timestamps"):
            if _go_bool(q.get(key), False):
                params.append((key, "true"))
        for key in ("sinceSeconds", "tailLines", "limitBytes"):
            if q.get(key) is not None:
                try:
                    params.append((key, str(int(q[key]))))
                except ValueError as exc:
                    raise self._error(400, "BadRequest", f'strconv.ParseInt: parsing "{q[key]}": invalid syntax') \
                        from exc
        url = f"http://{self._hostport(host, port)}/containerLogs/{urllib.parse.quote(namespace)}/" \
              f"{urllib.parse.quote(name)}/{urllib.parse.quote(container)}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
                async with session.get(url) as resp:
                    code, raw = resp.status, await resp.read()
        except (aiohttp.ClientConnectorError, OSError) as exc:
            raise self._error(500, "", f'Get "{url}": dial tcp {self._hostport(host, port)}: '
                                       f"{self._dial_error(exc)}") from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise self._error(500, "", f'Get "{url}": {exc}') from exc
        if 200 <= code <= 206:
            return aiohttp.web.Response(body=raw, content_type="text/plain", charset="utf-8")
        try:
            message = str(json.loads(raw).get("message", ""))
        except (ValueError, AttributeError):
            message = raw.decode(errors="replace")
        waiting = _log_status_error(pod, container, _go_bool(q.get("previous"), False))
        if waiting is not None:
            # the kubelet's validateContainerLogStatus -> 400 -> NewBadRequest(body)
            raise self._error(400, "BadRequest", waiting)
        if code == 400:
            raise self._error(400, "BadRequest", message)
        if code == 500:
            raise self._error(500, "InternalError", f"Internal error occurred: {message}",
                              {"causes": [{"message": message}]})
        # GenericHttpResponseChecker -> NewGenericServerResponse(code, "", pods/log, name)
        generic = {404: ("NotFound", "the server could not find the requested resource"),
                   409: ("Conflict", "the server reported a conflict")}
        reason, text = generic.get(code, ("InternalError" if code >= 500 else "",
                                          f"the server responded with the status code {code} "
                                          "but did not return more information"))
        raise self._error(code, reason, f"{text} ( pods/log {name})", {"name": name, "kind": "pods/log"})


def _log_status_error(pod: dict[str, Any], container: str, previous: bool) -> str | None:
    """pkg/kubelet/kubelet_pods.go validateContainerLogStatus over the Pod's
    status as the kubelet last wrote it; None when logs should exist."""
    status = pod.get("status") or {}
    podname = pod["metadata"]["name"]
    found = None
    for key in ("containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses"):
        found = next((s for s in status.get(key) or [] if s.get("name") == container), None)
        if found is not None:
            break
    if found is None:
        return f'container "{container}" in pod "{podname}" is not available'
    state = found.get("state") or {}
    last = (found.get("lastState") or {}).get("terminated")
    if previous:
        if not last or not last.get("containerID"):
            return f'previous terminated container "{container}" in pod "{podname}" not found'
        return None
    if state.get("running") is not None:
        return None
    if state.get("terminated") is not None:
        if state["terminated"].get("containerID") or (last and last.get("containerID")):
            return None
        return f'container "{container}" in pod "{podname}" is terminated'
    if last is not None:
        return None if last.get("containerID") else f'container "{container}" in pod "{podname}" is terminated'
    if state.get("waiting") is not None:
        reason = state["waiting"].get("reason", "")
        if reason == "ErrImagePull":
            return f'container "{container}" in pod "{podname}" is waiting to start: image can\'t be pulled'
        if reason == "ImagePullBackOff":
            return f'container "{container}" in pod "{podname}" is waiting to start: trying and failing to pull image'
        return f'container "{container}" in pod "{podname}" is waiting to start: {reason}'
    return f'container "{container}" in pod "{podname}" is waiting to start - no logs yet'
