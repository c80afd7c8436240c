"""The HTML report in a real headless browser (Debian's chromium).

The report is built from real check results: kubelab_checks' HTTP check
against loopback servers (one answers the nginx page, one a wrong page), its
spread check through a loopback proxy with per-pod access logs, the in-pod
checks judged from captured busybox outputs (a ping refused for want of
NET_RAW among them), node checks from crio_config_info-shaped data with an
unreachable node, and a group not run. Chromium loads the written file, and
the test reads back

* the DOM after load (``--dump-dom``): the two grids with a cell per check,
  a bar per pod, the failed checks' reasons;
* a screenshot (``--screenshot``): the colours of pass cells, fail cells
  and the bars are on screen, so the CSS laid them out (a bar of width 0 or
  an unstyled table has none of them).

Skipped, with the reason, when chromium is not installed (scripts/setup
installs it). Nothing leaves loopback; chromium runs with networking
features off and its own throw-away profile.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import struct
import subprocess
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ansible.module_utils import kubelab_checks as c
from ansible.module_utils import kubelab_report as rep

pytestmark = pytest.mark.slow

CAPTURES = Path(__file__).resolve().parent.parent / "data" / "captures"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (scripts/setup installs "
                                    "Debian's chromium); the HTML report's browser test cannot run")

# the report's CSS colours (module_utils/kubelab_report_html.py)
PASS_BG = (0xB7, 0xE4, 0xC0)
FAIL_BG = (0xF4, 0xB4, 0xAE)
BAR = (0x1F, 0x5F, 0xBF)
LOW_BAR = (0xB3, 0x26, 0x1E)


class Pods:
    """A loopback "Service": each request goes to one of the pods (weighted),
    which logs it in nginx's main format; ``body`` is what it answers."""

    def __init__(self, weights, body="<title>Welcome to nginx!</title>"):
        self.logs = {pod: [] for pod in weights}
        rng = random.Random(3)
        lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                with lock:
                    pod = rng.choices(list(weights), list(weights.values()))[0]
                    outer.logs[pod].append('127.0.0.1 - - [02/Dec/2026:06:00:00 +0000] "GET %s HTTP/1.1" 200 31 '
                                           '"-" "kubelab-verify" "-"' % self.path)
                data = body.encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.port = self.server.server_address[1]

    def read(self, pod, namespace=None):
        return "\n".join(self.logs[pod])

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Logs:
    def __init__(self, *sources):
        self.sources = sources

    def read(self, pod, namespace=None):
        return "\n".join(s.read(pod) for s in self.sources if pod in s.logs)


class CapturedExec:
    """Answers each in-pod command with a real busybox capture."""

    def __init__(self):
        self.map = {"ping": "ping_ok", "nslookup": "nslookup_short_ok", "cat": "status_no_net_raw",
                    "telnet": "telnet_ok"}

    def run(self, argv, timeout):
        if argv[0] == "ping" and argv[-1] == "10.244.2.14":
            name = "ping_permission_denied"
        elif argv[0] == "sh":
            name = "telnet_refused" if ":8081" in " ".join(argv) or " 8081 " in argv[-1] else "telnet_ok"
        else:
            name = self.map[argv[0]]
        d = json.loads((CAPTURES / f"{name}.json").read_text())
        return c.ExecResult(d["stdout"], d["stderr"], d["rc"], None, False)


def report_results():
    """Real results of kubelab_checks' checks, one of each kind failing."""
    good = Pods({"nginx-a": 1, "nginx-b": 1})
    lopsided = Pods({"nginx-a": 1, "nginx-b": 0})
    lopsided_np = Pods({"nginx-a": 1, "nginx-b": 0})
    wrong = Pods({"nginx-a": 1}, body="<h1>It works!</h1>")
    try:
        services = [
            {"name": "nginx-svc", "port": good.port, "node_port": None, "type": "ClusterIP", "ip": "10.105.132.127"},
            {"name": "nginx-svc-lb", "port": lopsided.port, "node_port": lopsided_np.port, "type": "LoadBalancer",
             "ip": "10.108.44.31"},
            {"name": "nginx-svc-np", "port": 8081, "node_port": wrong.port, "type": "NodePort", "ip": "10.99.5.7"},
        ]
        targets = {
            "namespace": "test", "cluster_domain": "cluster.local",
            "cluster_dns": {"name": "kube-dns", "namespace": "kube-system", "cluster_ip": "10.96.0.10",
                            "ports": [{"name": "dns-tcp", "port": 53, "protocol": "TCP"}]},
            "nodes": [{"name": "kubelab-w1", "addresses": ["127.0.0.1"]}],
            "services": [{"name": s["name"], "namespace": "test", "type": s["type"], "cluster_ip": s["ip"],
                          "external_ips": ["127.0.0.1"] if s["name"] != "nginx-svc-np" else [],
                          "ports": [{"port": s["port"], "protocol": "TCP", "node_port": s["node_port"]}],
                          "endpoints": [], "backends": ["nginx-a", "nginx-b"]} for s in services],
            "pods": [{"name": "nginx-a", "ip": "10.244.1.15", "node": "kubelab-w1", "ready": True,
                      "host_network": False},
                     {"name": "nginx-b", "ip": "10.244.2.14", "node": "kubelab-w2", "ready": True,
                      "host_network": False},
                     {"name": "busybox-1", "ip": "10.244.1.16", "node": "kubelab-w1", "ready": True,
                      "host_network": False}],
            "probe_pod": {"name": "busybox-1", "namespace": "test", "container": "busybox", "node": "kubelab-w1"},
        }
        results = c.check_http(targets, attempts=1, delay=0)
        results += c.check_spread(targets, Logs(good, lopsided, lopsided_np, wrong), requests=40, log_wait=1.0,
                                  sleep=lambda s: None)
        results += c.PodProbe(CapturedExec(), targets, attempts=1, delay=0,
                              node_crio_capabilities={"kubelab-w1": ["CHOWN", "KILL"]}).run()
    finally:
        for server in (good, lopsided, lopsided_np, wrong):
            server.close()
    nodes = [{"host": "kubelab-w1", "services": {"crio": "running", "kubelet": "running"},
              "crio": {"source": "daemon", "default_capabilities": ["CHOWN", "NET_RAW"],
                       "origin": {"default_capabilities": "/etc/crio/crio.conf.d/default_capabilities.conf"}}},
             {"host": "kubelab-w2", "services": {},
              "crio": {"unreachable": True, "msg": "Failed to connect to the host via ssh: Connection refused"}}]
    results = c.node_checks(nodes) + results
    results.append(c.skipped("http:from-nodes", "external", "verify_http_from_nodes is false", "GET from each node"))
    return results


def render(tmp_path):
    results = report_results()
    paths = rep.write_report(str(tmp_path / "report"), results, {"namespace": "test", "kubernetes_version": "1.35",
                                                                 "data_plane": True})
    return Path(paths["html"]), results


def chromium(*args, tmp_path):
    profile = tmp_path / "chromium-profile"
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--disable-extensions", "--hide-scrollbars", f"--user-data-dir={profile}", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def read_png(path):
    """(width, height, rows of (r, g, b) tuples) of an 8-bit RGB/RGBA PNG."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, {}
    idat = b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IDAT":
            idat += body
        else:
            chunks[kind] = body
        pos += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert depth == 8 and colour in (2, 6), (depth, colour)
    bpp = 3 if colour == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows, prev = [], bytearray(stride)
    i = 0
    for _ in range(height):
        kind = raw[i]
        line = bytearray(raw[i + 1:i + 1 + stride])
        i += 1 + stride
        for x in range(stride):
            left = line[x - bpp] if x >= bpp else 0
            up = prev[x]
            corner = prev[x - bpp] if x >= bpp else 0
            if kind == 1:
                line[x] = (line[x] + left) & 0xFF
            elif kind == 2:
                line[x] = (line[x] + up) & 0xFF
            elif kind == 3:
                line[x] = (line[x] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                pred = left if pa <= pb and pa <= pc else (up if pb <= pc else corner)
                line[x] = (line[x] + pred) & 0xFF
        rows.append([tuple(line[x:x + 3]) for x in range(0, stride, bpp)])
        prev = line
    return width, height, rows


def test_report_data_has_what_the_page_must_show():
    """The report is of real check results, with failures of each kind."""
    results = {r["id"]: r for r in report_results()}
    assert results["spread:nginx-svc"]["verdict"] == "pass"
    assert results["spread:nginx-svc-lb"]["verdict"] == "fail"
    assert [r["verdict"] for r in results.values() if r["id"].startswith("http:nginx-svc-np:")] == ["fail"]
    assert results["ping:nginx-b"]["verdict"] == "fail" and results["ping:nginx-b"]["reason"] == "permission_denied"
    assert results["node:kubelab-w2:crio-capabilities"]["reason"] == "unreachable"


@needs_chromium
def test_the_browser_renders_grid_bars_and_reasons(tmp_path):
    page, results = render(tmp_path)
    by_id = {r["id"]: r for r in results}
    dom = chromium("--dump-dom", page.as_uri(), tmp_path=tmp_path)
    assert "<table" in dom and 'id="verdict"' in dom and "FAILED" in dom
    # the externalIP x port grid and the node x nodePort grid: a cell per check, its verdict as class
    for r in results:
        if r["stage"] == "external" and r["verdict"] != "skip":
            cell = re.search(r'<td class="cell (pass|fail)" data-check="%s"' % re.escape(r["id"]), dom)
            assert cell and cell.group(1) == r["verdict"], r["id"]
    external = re.search(r'<table class="grid" id="grid-externalIP-controller">(.*?)</table>', dom, re.S).group(1)
    assert external.count('class="cell ') == 2  # 127.0.0.1 x nginx-svc:port, x nginx-svc-lb:port
    nodeports = re.search(r'<table class="grid" id="grid-nodePort-controller">(.*?)</table>', dom, re.S).group(1)
    assert "kubelab-w1 (127.0.0.1)" in nodeports and "wrong_body" in nodeports
    # a bar per pod and Service, as wide as its share
    for name in ("nginx-svc", "nginx-svc-lb"):
        details = by_id["spread:" + name]["details"]
        for pod, count in details["counts"].items():
            share = 100.0 * count / details["requests"]
            assert re.search(r'data-count="%d" style="width:%.2f%%"' % (count, share), dom), (name, pod)
    assert dom.count('class="fill') == 6 and dom.count('class="fill low"') == 2
    # failed checks show their reason
    lb = by_id["spread:nginx-svc-lb"]["reason"]
    assert "below" in lb and lb.split(":")[0] in dom
    assert "permission_denied" in dom and "ping -c 1 -W 2 10.244.2.14" in dom
    assert "ping: permission denied (are you root?)" in dom
    assert "refused" in dom  # tcp to nginx-svc-np:8081
    # what could not be checked, one line each
    assert dom.count("Not checked: <b>node kubelab-w2</b>") == 1  # one line; the node section points to it
    assert "Not checked: node kubelab-w2 (see above)." in dom
    assert "Not checked: <b>GET from each node</b> — verify_http_from_nodes is false" in dom


@needs_chromium
def test_the_screenshot_shows_the_grid_and_bar_colours(tmp_path):
    page, _results = render(tmp_path)
    shot = tmp_path / "report.png"
    chromium(f"--screenshot={shot}", "--window-size=1400,2600", page.as_uri(), tmp_path=tmp_path)
    width, height, rows = read_png(shot)
    assert (width, height) == (1400, 2600)
    seen = {}
    for row in rows:
        for pixel in row:
            seen[pixel] = seen.get(pixel, 0) + 1
    # flat areas of each colour: cells are ~7em x 2 lines, bars ~30em x 1.3em at full share
    assert seen.get(PASS_BG, 0) > 2000, "no pass cell on screen"
    assert seen.get(FAIL_BG, 0) > 2000, "no fail cell on screen"
    assert seen.get(BAR, 0) > 2000, "no spread bar on screen"
    assert seen.get(LOW_BAR, 0) > 200, "the pod below its share has no red bar"
    shutil.copy(shot, tmp_path.parent / "kubelab-report-screenshot.png")
