"""Regenerate the captured outputs in this directory (needs root).

Run: ``sudo /work/venv/bin/python tests/data/captures/capture.py``

Every ``*.json`` here (except the hand-written ``busybox128_*`` files, see
``README.md``) is the real stdout, stderr and exit code of busybox 1.35
(Debian 12) inside the namespace data plane of ``tests/fixtures_dataplane.py``,
and ``nginx_access.log`` holds real nginx 1.22 access-log lines written in the
official nginx image's ``main`` log format by the same data plane.
"""

from __future__ import annotations

import json
import sys
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent.parent
sys.path.insert(0, str(ROOT / "tests"))
import conftest  # noqa: E402,F401  (makes ansible.module_utils.kubelab_* importable)
from fixtures_dataplane import SILENT_IP, DataPlane  # noqa: E402


def save(name, argv, res):
    data = {"argv": argv, "stdout": res.stdout, "stderr": res.stderr, "rc": res.rc,
            "timed_out": res.timed_out, "busybox": "1.35.0 (Debian 1:1.35.0-4+deb12u1+b1)"}
    (HERE / f"{name}.json").write_text(json.dumps(data, indent=2) + "\n")


def main():
    plane = DataPlane().up()
    try:
        ex = plane.pod_executor()
        weak = plane.pod_executor(net_raw=False)
        cases = [
            ("nslookup_short_ok", ex, ["nslookup", "nginx-svc"]),
            ("nslookup_fqdn_ok", ex, ["nslookup", "nginx-svc.test.svc.cluster.local"]),
            ("nslookup_short_nxdomain", ex, ["nslookup", "no-such-svc"]),
            ("nslookup_fqdn_nxdomain", ex, ["nslookup", "no-such-svc.test.svc.cluster.local"]),
            ("nslookup_timeout", ex, ["nslookup", "nginx-svc.test.svc.cluster.local", SILENT_IP]),
            ("ping_ok", ex, ["ping", "-c", "2", "-W", "2", "10.244.2.10"]),
            ("ping_permission_denied", weak, ["ping", "-c", "2", "-W", "2", "10.244.2.10"]),
            ("ping_timeout", ex, ["ping", "-c", "2", "-W", "2", SILENT_IP]),
            ("telnet_ok", ex, ["sh", "-c", "timeout 3 telnet nginx-svc 80 </dev/null"]),
            ("telnet_dns_ok", ex, ["sh", "-c", "timeout 3 telnet kube-dns.kube-system 53 </dev/null"]),
            ("telnet_timeout", ex, ["sh", "-c", f"timeout 2 telnet {SILENT_IP} 80 </dev/null"]),
            ("telnet_bad_name", ex, ["sh", "-c", "timeout 3 telnet no-such-svc 80 </dev/null"]),
            ("status_net_raw", ex, ["cat", "/proc/1/status"]),
            ("status_no_net_raw", weak, ["cat", "/proc/1/status"]),
        ]
        for name, executor, argv in cases:
            save(name, argv, executor.run(argv, 20))
        # a port with no listener in the pod: the pod's kernel answers RST
        save("telnet_refused", ["sh", "-c", "timeout 3 telnet 10.244.2.10 81 </dev/null"],
             ex.run(["sh", "-c", "timeout 3 telnet 10.244.2.10 81 </dev/null"], 20))

        def requests():
            for url in ["http://198.18.0.11/", "http://198.18.0.12:8080/?kubelab-verify=r1-0001",
                        "http://198.18.0.11:31511/?kubelab-verify=r1-0002"]:
                for _ in range(2):
                    urllib.request.urlopen(url, timeout=3).read()

        plane.controller(requests)
        lines = []
        for key in ("pa", "pb"):
            lines += (plane.workdir / key / "access.log").read_text().splitlines()
        (HERE / "nginx_access.log").write_text("\n".join(lines) + "\n")
    finally:
        plane.down()


if __name__ == "__main__":
    main()
