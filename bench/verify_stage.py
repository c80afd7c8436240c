#!/usr/bin/env python3
"""Time the whole verify stage (ansible-playbook playbooks/verify.yml) against
the Kubernetes API emulator, on loopback, without podman or root.

The lab is tests/fixtures_verify_stage.py's: kapi with the write-up's objects,
a loopback "nginx" on every externalIP x port and node x nodePort, three
local-connection hosts. kapi has no kubelet, so the spread and in-pod checks
fail (pods/log and pods/exec answer 405): the time is that of the stage's
Ansible work, module start-ups and kubernetes-client imports, the HTTP checks
and the failed API calls, not of a real data plane.

Each --rev is a git revision of this repository, measured from a clean copy
(``git archive``) with the same lab, so a before/after comparison is

    .venv/bin/python bench/verify_stage.py --rev 2f9e5a8 --rev HEAD --runs 3

Without --rev the working tree is measured. Prints every run, the median
per tree, and how many module runs of the stage imported the kubernetes
client (counted by a sitecustomize hook in the module processes, see
tests/fixtures_verify_stage.py).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from fixtures_kapi import KubeApi  # noqa: E402
from fixtures_verify_stage import (  # noqa: E402
    LoopbackNginx, build_lab, kubernetes_import_counter, run_stage, stage_vars, write_inventory,
)

def checkout(rev: str, into: Path) -> Path:
    """A clean copy of the repository at rev (git archive, no .git)."""
    into.mkdir(parents=True)
    archive = into.parent / (into.name + ".tar")
    subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", "-o", str(archive), rev], check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    archive.unlink()
    return into


def measure(root: Path, label: str, runs: int, work: Path) -> list[float]:
    times = []
    for index in range(runs):
        run_dir = work / f"{label}-{index}"
        run_dir.mkdir(parents=True)
        extra_env, imports = kubernetes_import_counter(run_dir)
        api = KubeApi(run_dir).start()
        nginx = LoopbackNginx()
        try:
            build_lab(api.client(), nginx)
            inventory = write_inventory(run_dir / "hosts.json")
            values = stage_vars(api.kubeconfig, run_dir / "artifacts")
            result = run_stage(root, inventory, values, run_dir, extra_env=extra_env)
        finally:
            nginx.close()
            api.stop()
        report = result["report_dir"] / "verify.json"
        count = len(imports.read_text().splitlines()) if imports.exists() else 0
        times.append(result["seconds"])
        print(f"{label} run {index + 1}: {result['seconds']:.1f} s, ansible-playbook rc {result['rc']}, "
              f"report {'written' if report.exists() else 'MISSING'}, "
              f"{count} process(es) imported the kubernetes client", flush=True)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rev", action="append", default=[], help="git revision to measure (repeatable)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="kubelab-verify-stage-"))
    medians = {}
    try:
        trees = [(rev, checkout(rev, work / f"tree-{i}")) for i, rev in enumerate(args.rev)] or [("worktree", ROOT)]
        for label, root in trees:
            medians[label] = statistics.median(measure(root, label.replace("/", "_"), args.runs, work))
        for label, value in medians.items():
            print(f"median {label}: {value:.1f} s over {args.runs} run(s)")
    finally:
        if args.keep:
            print(f"work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
