"""pods/exec and pods/log of the API emulator (TEST DOUBLE,
molecule/resources/standins/kapi/streams.py), forwarded to a fake kubelet on
127.0.0.1 that speaks the JSON link of the wiring ("kapi <-> kubelet
stand-in link"), checked with the real kubernetes Python client, kubelab's
KubeExecExecutor and (when installed) kubectl. Loopback only, no root."""

from __future__ import annotations

import base64
import http.server
import json
import socket
import subprocess
import threading
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import kubernetes.client
import pytest
import websocket
from kubernetes.client.rest import ApiException
from kubernetes.stream import stream

from ansible.module_utils.kubelab_checks import KubeExecExecutor
from fixtures_kapi import KubeApi, kubectl_binary

pytestmark = pytest.mark.slow

NS = "default"


class FakeKubelet:
    """The kubelet side of the JSON link. ``exec`` runs the argv on this host
    (short commands only); pods/containers it knows are in ``known``; a
    command starting with ``@timeout`` reports a time-out; ``not_running``
    containers answer 409."""

    def __init__(self) -> None:
        self.known: set[tuple[str, str, str]] = set()
        self.not_running: set[tuple[str, str, str]] = set()
        self.logs: dict[tuple[str, str, str], str] = {}
        self.requests: list[tuple[str, str, Any]] = []
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # noqa: D401
                pass

            def _send(self, code: int, body: Any, ctype: str = "application/json") -> None:
                data = (json.dumps(body) if ctype == "application/json" else body).encode()
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _key(self, prefix: str):
                url = urllib.parse.urlsplit(self.path)
                parts = [urllib.parse.unquote(p) for p in url.path.split("/") if p]
                if len(parts) != 4 or parts[0] != prefix:
                    self._send(404, {"reason": "NotFound", "message": "unknown path"})
                    return None, None
                key = tuple(parts[1:])
                if key not in fake.known:
                    self._send(404, {"reason": "NotFound", "message": f'pod "{key[1]}" not found on node'})
                    return None, None
                return key, urllib.parse.parse_qs(url.query)

            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                fake.requests.append(("exec", self.path, body))
                key, _ = self._key("exec")
                if key is None:
                    return
                if key in fake.not_running:
                    self._send(409, {"reason": "ContainerNotRunning", "message": "not running"})
                    return
                argv = body["command"]
                if argv and argv[0] == "@timeout":
                    self._send(200, {"stdout": "partial\n", "stderr": "", "exitCode": None, "timedOut": True})
                    return
                proc = subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False)
                self._send(200, {"stdout": proc.stdout, "stderr": proc.stderr, "exitCode": proc.returncode})

            def do_GET(self):  # noqa: N802
                fake.requests.append(("log", self.path, None))
                key, query = self._key("containerLogs")
                if key is None:
                    return
                text = fake.logs.get(key, "")
                if query.get("tailLines"):
                    lines = text.splitlines(keepends=True)
                    n = int(query["tailLines"][0])
                    text = "".join(lines[-n:]) if n else ""
                self._send(200, text, "text/plain")

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    api = KubeApi(tmp_path_factory.mktemp("kapi-exec")).start()
    kubelet = FakeKubelet()
    core = kubernetes.client.CoreV1Api(api.client())

    def node(name: str, addresses: list[dict[str, str]], port: int | None) -> None:
        status: dict[str, Any] = {"addresses": addresses}
        if port is not None:
            status["daemonEndpoints"] = {"kubeletEndpoint": {"Port": port}}
        core.create_node({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}, "status": status})

    node("w1", [{"type": "Hostname", "address": "w1"}, {"type": "InternalIP", "address": "127.0.0.1"}], kubelet.port)
    node("noaddr", [], kubelet.port)
    node("down", [{"type": "InternalIP", "address": "127.0.0.1"}], _free_port())

    def pod(name: str, node_name: str | None, containers=("app",), status: dict | None = None) -> None:
        spec: dict[str, Any] = {"containers": [{"name": c, "image": "busybox"} for c in containers]}
        if node_name:
            spec["nodeName"] = node_name
        core.create_namespaced_pod(NS, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec})
        running = {"phase": "Running", "containerStatuses": [
            {"name": c, "ready": True, "restartCount": 0, "image": "busybox", "imageID": "",
             "containerID": f"cri-o://{name}-{c}", "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}
            for c in containers]}
        core.patch_namespaced_pod_status(name, NS, {"status": status or running})

    pod("web", "w1")
    kubelet.known.add((NS, "web", "app"))
    kubelet.logs[(NS, "web", "app")] = "line1\nline2\nline3\n"
    pod("two", "w1", containers=("a", "b"))
    kubelet.known.update({(NS, "two", "a"), (NS, "two", "b")})
    kubelet.logs[(NS, "two", "b")] = "from b\n"
    pod("unscheduled", None)
    pod("lost", "w1")  # the kubelet does not know it
    pod("stopped", "w1")
    kubelet.known.add((NS, "stopped", "app"))
    kubelet.not_running.add((NS, "stopped", "app"))
    pod("creating", "w1", status={"phase": "Pending", "containerStatuses": [
        {"name": "app", "ready": False, "restartCount": 0, "image": "busybox", "imageID": "",
         "state": {"waiting": {"reason": "ContainerCreating"}}}]})
    pod("nowhere", "noaddr")
    pod("offline", "down")
    pod("ghost", "gone-node")
    try:
        yield {"api": api, "core": core, "kubelet": kubelet}
    finally:
        kubelet.stop()
        api.stop()


def _exec(core, name: str, argv: list[str], **kwargs):
    resp = stream(core.connect_get_namespaced_pod_exec, name, NS, command=argv, stderr=True, stdin=False,
                  stdout=True, tty=False, _preload_content=False, **kwargs)
    resp.run_forever(timeout=30)
    return resp


def _ws_url(api: KubeApi, name: str, query: str) -> str:
    return api.url.replace("http://", "ws://") + f"/api/v1/namespaces/{NS}/pods/{name}/exec?{query}"


def _handshake_error(api: KubeApi, name: str, query: str = "command=true&stdout=true", protocol: str = "v4.channel.k8s.io"):
    with pytest.raises(websocket.WebSocketBadStatusException) as info:
        websocket.create_connection(_ws_url(api, name, query), subprotocols=[protocol], timeout=30)
    return info.value.status_code, info.value.resp_body.decode()


def _frames(api: KubeApi, protocol: str | None, query: str) -> tuple[str | None, list[Any]]:
    ws = websocket.create_connection(_ws_url(api, "web", query), subprotocols=[protocol] if protocol else None,
                                     timeout=30)
    frames = []
    try:
        while True:
            opcode, data = ws.recv_data(control_frame=False)
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                break
            frames.append(data)
    except websocket.WebSocketConnectionClosedException:
        pass
    return ws.subprotocol, frames


# ------------------------------------------------------------------ exec
def test_exec_stdout_stderr_and_success(lab):
    resp = _exec(lab["core"], "web", ["sh", "-c", "echo hello; echo oops >&2"])
    assert resp.read_stdout() == "hello\n"
    assert resp.read_stderr() == "oops\n"
    assert resp.returncode == 0
    method, path, body = lab["kubelet"].requests[-1]
    assert (method, path) == ("exec", f"/exec/{NS}/web/app")
    assert body == {"command": ["sh", "-c", "echo hello; echo oops >&2"], "timeout": 60.0}


def test_exec_nonzero_exit_code_v5_status(lab):
    """The Python client offers v5 and v4; kube-apiserver's stream translator
    answers v5 with codeExitToStatusError."""
    resp = _exec(lab["core"], "web", ["sh", "-c", "echo out; exit 3"])
    assert resp.subprotocol == "v5.channel.k8s.io"
    assert resp.read_stdout() == "out\n"
    raw = resp.read_channel(3)
    assert json.loads(raw) == {
        "metadata": {}, "status": "Failure",
        "message": "command terminated with non-zero exit code: command terminated with exit code 3",
        "reason": "NonZeroExitCode", "details": {"causes": [{"reason": "ExitCode", "message": "3"}]}}
    resp._returncode = None
    resp._channels[3] = raw
    assert resp.returncode == 3


def test_exec_without_any_stream_is_refused_before_the_kubelet(lab):
    """stdin, stdout and stderr default to false: asking for none is the kubelet's 400."""
    before = len(lab["kubelet"].requests)
    with pytest.raises(websocket.WebSocketBadStatusException) as info:
        websocket.create_connection(_ws_url(lab["api"], "web", "command=true"),
                                    subprotocols=["v4.channel.k8s.io"], timeout=30)
    assert info.value.status_code == 400
    assert b"you must specify at least 1 of stdin, stdout, stderr" in (info.value.resp_body or b"")
    assert len(lab["kubelet"].requests) == before  # nothing ran


def test_exec_v4_status_and_success_json(lab):
    proto, frames = _frames(lab["api"], "v4.channel.k8s.io", "command=sh&command=-c&command=exit+4&stdout=true")
    assert proto == "v4.channel.k8s.io"
    assert frames[-1][:1] == b"\x03"
    assert json.loads(frames[-1][1:]) == {
        "metadata": {}, "status": "Failure", "message": "command terminated with non-zero exit code: exit status 4",
        "reason": "NonZeroExitCode", "details": {"causes": [{"reason": "ExitCode", "message": "4"}]}}
    _, frames = _frames(lab["api"], "v4.channel.k8s.io", "command=echo&command=hi&stdout=true&stderr=true")
    assert frames == [b"\x01hi\n", b'\x03{"metadata":{},"status":"Success"}']


def test_exec_v1_and_base64_protocols(lab):
    proto, frames = _frames(lab["api"], "channel.k8s.io", "command=sh&command=-c&command=echo+x%3Bexit+1&stdout=true")
    assert proto == "channel.k8s.io"
    assert frames == [b"\x01x\n", b"\x03command terminated with non-zero exit code: exit status 1"]
    proto, frames = _frames(lab["api"], "v4.base64.channel.k8s.io", "command=echo&command=hi&stdout=true")
    assert proto == "v4.base64.channel.k8s.io"
    assert frames[0] == b"1" + base64.b64encode(b"hi\n")
    assert frames[1][:1] == b"3" and json.loads(base64.b64decode(frames[1][1:])) == {"metadata": {}, "status": "Success"}
    _, frames = _frames(lab["api"], None, "command=true&stdout=true")  # no subprotocol: binary, v1 status (none on success)
    assert frames == []


def test_exec_unknown_subprotocol_is_forbidden(lab):
    assert _handshake_error(lab["api"], "web", protocol="v9.channel.k8s.io")[0] == 403


def test_kube_exec_executor(lab):
    executor = KubeExecExecutor(lab["core"], NS, "web")
    result = executor.run(["sh", "-c", "echo a; echo b >&2; exit 2"], 20)
    assert (result.stdout, result.stderr, result.rc, result.error) == ("a\n", "b\n", 2, None)
    ok = executor.run(["echo", "fine"], 20)
    assert (ok.stdout, ok.rc, ok.error) == ("fine\n", 0, None)
    two = KubeExecExecutor(lab["core"], NS, "two", container="b").run(["echo", "b"], 20)
    assert two.rc == 0 and lab["kubelet"].requests[-1][1] == f"/exec/{NS}/two/b"


def test_exec_timeout_is_an_error_status(lab):
    proto, frames = _frames(lab["api"], "v4.channel.k8s.io", "command=%40timeout&stdout=true")
    assert frames[0] == b"\x01partial\n"
    status = json.loads(frames[-1][1:])
    assert status["status"] == "Failure" and status["reason"] == "InternalError" and status["code"] == 500
    assert status["message"] == "Internal error occurred: error executing command in container: timed out after 60s"
    result = KubeExecExecutor(lab["core"], NS, "web").run(["@timeout"], 20)
    assert result.rc is None and result.error


@pytest.mark.parametrize(("pod", "query", "code", "message"), [
    ("missing", "command=true", 404, 'pods "missing" not found'),
    ("unscheduled", "command=true", 400, "pod unscheduled does not have a host assigned"),
    ("web", "command=true&container=nope", 400, "container nope is not valid for pod web"),
    ("two", "command=true", 400, "a container name must be specified for pod two, choose one of: [a b]"),
    ("nowhere", "command=true", 500, "no preferred addresses found; known addresses: []"),
    ("ghost", "command=true", 404, 'nodes "gone-node" not found'),
])
def test_exec_api_server_refusals(lab, pod, query, code, message):
    status, body = _handshake_error(lab["api"], pod, query)
    assert status == code
    assert json.loads(body)["message"] == message
    with pytest.raises(ApiException) as info:
        kwargs = {"container": "nope"} if "container=nope" in query else {}
        _exec(lab["core"], pod, ["true"], **kwargs)
    assert json.dumps(message)[1:-1] in info.value.reason


def test_exec_kubelet_refusals_are_proxied(lab):
    assert _handshake_error(lab["api"], "lost") == (404, "pod does not exist")
    assert _handshake_error(lab["api"], "stopped") == (500, 'container not found ("app")')
    status, body = _handshake_error(lab["api"], "offline")
    port = lab["kubelet"].port
    assert status == 500
    message = json.loads(body)["message"]
    assert message.startswith("error dialing backend: dial tcp 127.0.0.1:") and "connection refused" in message
    assert f":{port}:" not in message and message.endswith(": connect: connection refused")
    result = KubeExecExecutor(lab["core"], NS, "stopped").run(["true"], 10)
    assert result.rc is None and 'container not found ("app")' in result.error


def test_exec_without_upgrade_and_other_subresources(lab):
    base = lab["api"].url + f"/api/v1/namespaces/{NS}/pods/web/"
    for method, sub, code in [("GET", "exec?command=true", 400), ("POST", "exec?command=true", 400),
                              ("GET", "attach", 405), ("GET", "portforward", 405), ("GET", "proxy", 405),
                              ("POST", "eviction", 405), ("POST", "log", 405)]:
        req = urllib.request.Request(base + sub, method=method, data=b"{}" if method == "POST" else None)
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(req, timeout=10)  # noqa: S310 - loopback
        assert info.value.code == code, sub
        if code == 400:
            body = json.loads(info.value.read())
            assert (body["reason"], body["message"]) == ("BadRequest", "Upgrade request required")


# ------------------------------------------------------------------ log
def test_log_tail_lines(lab):
    core = lab["core"]
    assert core.read_namespaced_pod_log("web", NS) == "line1\nline2\nline3\n"
    assert core.read_namespaced_pod_log("web", NS, tail_lines=2) == "line2\nline3\n"
    assert lab["kubelet"].requests[-1][1] == f"/containerLogs/{NS}/web/app?tailLines=2"
    assert core.read_namespaced_pod_log("two", NS, container="b", timestamps=True) == "from b\n"
    assert lab["kubelet"].requests[-1][1] == f"/containerLogs/{NS}/two/b?timestamps=true"
    assert core.read_namespaced_pod_log("unscheduled", NS) == ""  # LogLocation: no host, empty stream


@pytest.mark.parametrize(("pod", "kwargs", "code", "reason", "message"), [
    ("missing", {}, 404, "NotFound", 'pods "missing" not found'),
    ("two", {}, 400, "BadRequest", "a container name must be specified for pod two, choose one of: [a b]"),
    ("web", {"container": "x"}, 400, "BadRequest", "container x is not valid for pod web"),
    ("creating", {}, 400, "BadRequest", 'container "app" in pod "creating" is waiting to start: ContainerCreating'),
    ("lost", {}, 404, "NotFound", "the server could not find the requested resource ( pods/log lost)"),
    ("nowhere", {}, 500, None, "no preferred addresses found; known addresses: []"),
])
def test_log_refusals(lab, pod, kwargs, code, reason, message):
    with pytest.raises(ApiException) as info:
        lab["core"].read_namespaced_pod_log(pod, NS, **kwargs)
    body = json.loads(info.value.body)
    assert info.value.status == code
    assert body.get("reason") == reason
    assert body["message"] == message


# ------------------------------------------------------------------ kubectl
def test_kubectl_exec_and_logs(lab):
    if kubectl_binary() is None:
        pytest.skip("kubectl is not installed")
    api = lab["api"]
    out = api.kubectl("exec", "web", "--", "sh", "-c", "echo via-kubectl; echo e >&2")
    assert out.stdout == "via-kubectl\n" and out.stderr == "e\n"
    failed = api.kubectl("exec", "web", "--", "sh", "-c", "exit 5", check=False)
    assert failed.returncode == 5
    assert "command terminated with exit code 5" in failed.stderr
    assert api.kubectl("logs", "web", "--tail=1").stdout == "line3\n"
    assert api.kubectl("logs", "two", "-c", "b").stdout == "from b\n"
    pending = api.kubectl("logs", "creating", check=False)
    assert pending.returncode != 0
    assert 'container "app" in pod "creating" is waiting to start: ContainerCreating' in pending.stderr
    lost = api.kubectl("exec", "stopped", "--", "true", check=False)
    assert lost.returncode != 0 and 'container not found ("app")' in lost.stderr


def test_state_survives_without_streams(tmp_path: Path):
    """A plain kapi (no kubelet anywhere) still answers exec on an unknown pod with 404."""
    api = KubeApi(tmp_path).start()
    try:
        core = kubernetes.client.CoreV1Api(api.client())
        with pytest.raises(ApiException) as info:
            core.read_namespaced_pod_log("nope", NS)
        assert info.value.status == 404
    finally:
        api.stop()
