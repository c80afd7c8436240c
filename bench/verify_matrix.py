#!/usr/bin/env python3
"""Time kubelab's whole verification matrix on the namespace data plane (root).

Builds the data plane of tests/fixtures_dataplane.py once (two nodes, two
nginx pods, busybox pod, dnsmasq, kube-proxy-style nftables), then runs the
matrix several times - HTTP from the controller namespace (10 targets), load
spreading (3 Services x 65 marked requests, logs read back), and the in-pod
checks (3 pings, 4 TCP connects, 6 nslookups through the namespace executor)
- and prints the median and spread of each part and of the whole.

    sudo .venv/bin/python bench/verify_matrix.py [--runs 7]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
import conftest  # noqa: E402,F401  (module_utils importable as ansible.module_utils.*)
from fixtures_dataplane import DataPlane  # noqa: E402

from ansible.module_utils import kubelab_checks as checks  # noqa: E402


def one_run(plane, workers_http, workers_pod):
    targets = plane.targets()
    times = {}
    start = time.monotonic()
    http = plane.controller(checks.check_http, targets, workers=workers_http)
    times["http"] = time.monotonic() - start
    mark = time.monotonic()
    spread = plane.controller(checks.check_spread, targets, plane.log_source())
    times["spread"] = time.monotonic() - mark
    mark = time.monotonic()
    pod = checks.PodProbe(plane.pod_executor(), targets, workers=workers_pod).run()
    times["pod"] = time.monotonic() - mark
    times["total"] = time.monotonic() - start
    results = http + spread + pod
    failed = [r["id"] for r in results if r["verdict"] != "pass"]
    return times, len(results), failed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--http-workers", type=int, default=16)
    parser.add_argument("--pod-workers", type=int, default=8)
    args = parser.parse_args(argv)
    plane = DataPlane().up()
    try:
        runs = []
        for _ in range(args.runs):
            times, count, failed = one_run(plane, args.http_workers, args.pod_workers)
            if failed:
                print("FAILED checks in a healthy data plane: %s" % failed, file=sys.stderr)
                return 1
            runs.append(times)
    finally:
        plane.down()
    print("data plane: setup %.3f s, teardown %.3f s" % (plane.setup_seconds, plane.teardown_seconds))
    print("%d checks per run, %d runs (http workers %d, pod workers %d)" % (
        count, args.runs, args.http_workers, args.pod_workers))
    for part in ("http", "spread", "pod", "total"):
        values = [r[part] for r in runs]
        print("%-7s median %.3f s  min %.3f s  max %.3f s" % (part, statistics.median(values), min(values), max(values)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
