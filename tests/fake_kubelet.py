"""A TEST DOUBLE of the kubelet's exec/log endpoints, for the namespace data plane.

The API emulator (molecule/resources/standins/kapi) forwards ``pods/exec``
and ``pods/log`` to the kubelet of the pod's node, at the Node's InternalIP
and ``status.daemonEndpoints.kubeletEndpoint.Port``, over the JSON link the
kubelet stand-in serves (molecule/resources/standins/nodeagent/CONTRACT.md):

- ``POST /exec/NS/POD/CONTAINER`` ``{"command": [...], "timeout": s}`` ->
  ``{"stdout", "stderr", "exitCode"}`` (``exitCode`` null and ``timedOut``
  true when the command ran out of time), 404 ``NotFound``;
- ``GET /containerLogs/NS/POD/CONTAINER?tailLines=N`` -> text/plain.

In the namespace data plane the pods are not podrt pods: this server maps
``(namespace, pod)`` to an executor (``NetnsExecutor``) and to a log file,
and listens inside the node's network namespace on the node's address, so
that kapi reaches it exactly as it reaches a lab node's kubelet.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit


class FakeKubelet:
    """``FakeKubelet(execs={(ns, pod): executor}, logs={(ns, pod): path})``."""

    def __init__(self, execs=None, logs=None):
        self.execs = dict(execs or {})
        self.logs = {k: Path(v) for k, v in (logs or {}).items()}
        self.requests: list[str] = []
        self.server: ThreadingHTTPServer | None = None
        self.thread: threading.Thread | None = None

    def bind(self, address: str, port: int = 0) -> int:
        """Bind (in the calling thread's network namespace) and serve; returns the port."""
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _send(self, code, body, ctype="application/json"):
                data = body if isinstance(body, bytes) else (
                    json.dumps(body) if ctype == "application/json" else body).encode()
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _key(self, prefix):
                parts = [unquote(p) for p in urlsplit(self.path).path.split("/")[1:]]
                if len(parts) != 4 or parts[0] != prefix:
                    return None
                return parts[1], parts[2], parts[3]

            def do_POST(self):  # noqa: N802
                fake.requests.append("POST " + self.path)
                key = self._key("exec")
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if key is None or (key[0], key[1]) not in fake.execs:
                    return self._send(404, {"reason": "NotFound", "message": "pod not found on this node"})
                res = fake.execs[(key[0], key[1])].run(list(body["command"]), float(body.get("timeout", 30)))
                self._send(200, {"stdout": res.stdout, "stderr": res.stderr,
                                 "exitCode": None if res.timed_out else res.rc, "timedOut": bool(res.timed_out)})

            def do_GET(self):  # noqa: N802
                fake.requests.append("GET " + self.path)
                key = self._key("containerLogs")
                if key is None or (key[0], key[1]) not in fake.logs:
                    return self._send(404, {"reason": "NotFound", "message": "pod not found on this node"})
                path = fake.logs[(key[0], key[1])]
                text = path.read_text() if path.exists() else ""
                tail = parse_qs(urlsplit(self.path).query).get("tailLines")
                if tail:
                    text = "".join(text.splitlines(keepends=True)[-int(tail[0]):])
                self._send(200, text, "text/plain")

        self.server = ThreadingHTTPServer((address, port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self.server.server_address[1]

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
