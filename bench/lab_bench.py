#!/usr/bin/env python3
"""Benchmark kubelab's site.yml on the offline container lab (issue 8).

For each lab size N (one control plane, N-1 workers, alternating el8 and
debian12 TEST nodes, plus one extra worker container kept out of the
inventory) it measures, as medians of --repeat runs:

  floor       ansible all -m ansible.builtin.setup, same inventory and settings
  empty       site.yml selecting no task (--tags with a tag no task has): the
              start-up, inventory, plays and argument validation that every
              run pays before its first task
  converge    first converge of site.yml (--converge-repeat, default 1: each
              repeat destroys and re-creates the lab)
  no-op       site.yml again on the converged lab; tasks per host and changed
              counts are read from the JSON callback (changed must be 0)
  add-worker  site.yml after adding the extra worker to the inventory; between
              repeats that worker is reset (playbooks/reset.yml), site.yml is
              run without it (untimed) and its container re-created, so every
              repeat adds a fresh node to the same lab state

It ends with each of issue 8's targets, the figures it compares and whether it
is met. And once, independent of N, the verify matrix on the namespace data plane
(bench/verify_matrix.py, root). The lab is always destroyed at the end, also
on failure and Ctrl-C.

    .venv/bin/python bench/lab_bench.py --nodes 3,10,20 --repeat 3   # as root, from the project root
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
LAB_CREATE = ROOT / "molecule/resources/playbooks/lab_create.yml"
LAB_DESTROY = ROOT / "molecule/resources/playbooks/lab_destroy.yml"
IMAGE_BUILD = ROOT / "molecule/resources/image/build.sh"
STANDINS_BUILD = ROOT / "molecule/resources/standins/build.sh"
VERIFY_MATRIX = ROOT / "bench/verify_matrix.py"
# ansible, ansible-playbook and molecule of the virtualenv that runs this script
VENV_BIN = Path(sys.executable).parent

LAB_NAME = "kubelab-bench"
NODE_PREFIX = "kubelab-b-"
FLAVOURS = ("el8", "debian12")
CONNECTION_PLUGINS = "molecule/resources/plugins/connection"
TRANSPORTS = ("kubelab_podman", "containers.podman.podman")
HEARTBEAT = 60  # seconds between "still running" lines
NO_TASK_TAG = "kubelab-bench-no-task"  # carried by no task: site.yml runs no task


# --------------------------------------------------------------------------
# Pure parts (unit tested in tests/unit/test_bench_lab.py)
# --------------------------------------------------------------------------

INOTIFY_QUOTA = Path("/proc/sys/fs/inotify/max_user_instances")


def inotify_quota_needed(nodes, others=8):
    """root's inotify instances for NODES systemd containers (about 10 each,
    see lab_create.yml) and OTHERS other containers or services."""
    return 10 * (nodes + others) + 32


def raise_inotify_quota(nodes, path=INOTIFY_QUOTA):
    """Raise fs.inotify.max_user_instances for a lab of NODES containers when it
    is too small (systemd in the nodes past the quota exits at once). Returns
    the old value to restore, or None when nothing was changed."""
    current = int(path.read_text().strip())
    needed = inotify_quota_needed(nodes)
    if current >= needed:
        return None
    progress("fs.inotify.max_user_instances %d -> %d for %d nodes (restored at the end)" % (current, needed, nodes))
    path.write_text("%d\n" % needed)
    return current


def restore_inotify_quota(value, path=INOTIFY_QUOTA):
    if value is not None:
        path.write_text("%d\n" % value)
        progress("fs.inotify.max_user_instances restored to %d" % value)


def parse_nodes(text):
    """'3,10,20' -> [3, 10, 20]; every size needs a control plane and a worker."""
    sizes = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if not part.isdigit() or int(part) < 2:
            raise ValueError("node counts must be integers >= 2 (one control plane and at least one worker), got %r" % part)
        sizes.append(int(part))
    if not sizes:
        raise ValueError("no node count given")
    return sizes


def make_spec(n, subnet, repo_dir, inventory_out, name=LAB_NAME, network=LAB_NAME, prefix=NODE_PREFIX,
              connection=TRANSPORTS[0]):
    """Lab description for lab_create.yml: 1 control plane, n-1 workers and
    one extra worker (the last node; the caller keeps it out of the first
    inventory). Flavours alternate el8, debian12, ... from the control plane
    on; addresses are consecutive from host .10 of the subnet."""
    if n < 2:
        raise ValueError("a lab needs at least 2 nodes, got %d" % n)
    net = ipaddress.ip_network(subnet)
    first = net.network_address + 10
    last_needed = first + n  # n inventory nodes + 1 extra
    if last_needed >= net.broadcast_address:
        raise ValueError("subnet %s too small for %d nodes" % (subnet, n + 1))
    nodes = []
    for i in range(n + 1):
        nodes.append({
            "name": prefix + ("cp1" if i == 0 else "w%d" % i),
            "flavour": FLAVOURS[i % 2],
            "ip": str(first + i),
            "group": "control_plane" if i == 0 else "workers",
        })
    return {
        "name": name,
        "network": network,
        "subnet": str(net),
        "repo_dir": str(repo_dir),
        "inventory_out": str(inventory_out),
        "connection": connection,
        "nodes": nodes,
    }


def extra_node(spec):
    """The worker created for the add-worker step (the last node)."""
    return spec["nodes"][-1]["name"]


def inventory_without(inventory, host):
    """A copy of a lab inventory (dict) with HOST removed from every group."""
    out = json.loads(json.dumps(inventory))
    found = False
    for group in out.get("all", {}).get("children", {}).values():
        hosts = group.get("hosts") or {}
        if host in hosts:
            del hosts[host]
            found = True
    if not found:
        raise ValueError("host %s is not in the inventory" % host)
    return out


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def growth(sizes, values):
    """Growth of a figure from the smallest to the largest N: value ratio,
    N ratio, and whether it is sub-linear (value ratio < N ratio)."""
    pairs = [(n, v) for n, v in zip(sizes, values) if v is not None]
    if len(pairs) < 2:
        return None
    pairs.sort()
    (n0, v0), (n1, v1) = pairs[0], pairs[-1]
    if n0 == n1 or not v0:
        return None
    value_ratio = v1 / v0
    n_ratio = n1 / n0
    return {"from": n0, "to": n1, "value_ratio": value_ratio, "n_ratio": n_ratio,
            "sublinear": value_ratio < n_ratio}


def extract_json(stdout):
    """The JSON document printed by the ansible.posix.json callback. Other
    callbacks (ansible.cfg enables profile_tasks) print lines before and
    after it; the document is the first line starting with '{' and what
    follows it up to where it ends."""
    decoder = json.JSONDecoder()
    pos = 0
    while True:
        start = stdout.find("{", pos)
        if start < 0:
            raise ValueError("no JSON document in the playbook output")
        if start == 0 or stdout[start - 1] == "\n":
            try:
                doc, _ = decoder.raw_decode(stdout, start)
            except ValueError:
                doc = None
            if isinstance(doc, dict) and "plays" in doc:
                return doc
        pos = start + 1


def per_host_counts(doc):
    """Per host, from an ansible.posix.json document: tasks executed (results
    that were not skipped), skipped, changed, failed; 'stats' is Ansible's own
    recap. A looped task counts once."""
    counts = {}
    for play in doc.get("plays", []):
        for task in play.get("tasks", []):
            for host, result in task.get("hosts", {}).items():
                c = counts.setdefault(host, {"tasks": 0, "skipped": 0, "changed": 0, "failed": 0,
                                             "changed_tasks": []})
                if result.get("skipped"):
                    c["skipped"] += 1
                    continue
                c["tasks"] += 1
                if result.get("changed"):
                    c["changed"] += 1
                    c["changed_tasks"].append(task.get("task", {}).get("name", "?"))
                if result.get("failed") or result.get("unreachable"):
                    c["failed"] += 1
    for host, stats in doc.get("stats", {}).items():
        counts.setdefault(host, {"tasks": 0, "skipped": 0, "changed": 0, "failed": 0,
                                 "changed_tasks": []})["stats"] = stats
    return counts


def failures(doc):
    """[(task, host, message)] for every host the recap counts as failed or
    unreachable: that host's last failed result (a host stops at its fatal
    failure; earlier failures on it were ignored ones)."""
    bad = {h for h, s in doc.get("stats", {}).items() if s.get("failures") or s.get("unreachable")}
    last = {}
    for play in doc.get("plays", []):
        for task in play.get("tasks", []):
            for host, result in task.get("hosts", {}).items():
                if host in bad and (result.get("failed") or result.get("unreachable")):
                    msg = result.get("msg") or result.get("stderr") or json.dumps(result)[:500]
                    last[host] = (task.get("task", {}).get("name", "?"), host, str(msg)[:1000])
    return [last[h] for h in sorted(last)]


def parse_verify_matrix(text):
    """The median of the whole matrix from bench/verify_matrix.py's output."""
    m = re.search(r"^total\s+median\s+([0-9.]+)\s*s", text, re.M)
    return float(m.group(1)) if m else None


def _fmt(value, unit=""):
    if value is None:
        return "-"
    if isinstance(value, float):
        return "%.2f%s" % (value, unit) if unit == "x" else "%.1f" % value
    return str(value)


COLUMNS = ("N", "floor s", "empty s", "converge s", "no-op s", "add-worker s", "no-op/floor", "add/no-op", "tasks/node no-op")


def table(rows):
    """Text table of the per-N results (rows: dicts as built by main)."""
    lines = []
    cells = []
    for r in rows:
        # Nodes only: the controller (localhost, verify stage) is not a node.
        tasks = {h: t for h, t in (r.get("noop_tasks_per_host") or {}).items() if h != "localhost"}
        if tasks:
            lo, hi = min(tasks.values()), max(tasks.values())
            tasks_s = str(lo) if lo == hi else "%d-%d" % (lo, hi)
        else:
            tasks_s = "-"
        cells.append([str(r["n"]), _fmt(r.get("floor")), _fmt(r.get("empty")), _fmt(r.get("converge")), _fmt(r.get("noop")),
                      _fmt(r.get("add_worker")), _fmt(ratio(r.get("noop"), r.get("floor")), "x"),
                      _fmt(ratio(r.get("add_worker"), r.get("noop")), "x"), tasks_s])
    widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, h in enumerate(COLUMNS)]
    lines.append("  ".join(h.rjust(w) for h, w in zip(COLUMNS, widths)))
    for c in cells:
        lines.append("  ".join(v.rjust(w) for v, w in zip(c, widths)))
    return "\n".join(lines)


def targets(rows):
    """Issue 8's targets against the medians of ROWS (summarised): a list of
    (target, figures, met) where met is True, False or None (not measured)."""
    by_n = {r["n"]: r for r in rows}
    out = []
    for n in (3, 20):
        r = by_n.get(n, {})
        x = ratio(r.get("noop"), r.get("floor"))
        out.append(("no-op <= 2x floor at N=%d" % n,
                    "no-op %s s / floor %s s = %s" % (_fmt(r.get("noop")), _fmt(r.get("floor")), _fmt(x, "x")),
                    None if x is None else x <= 2.0))
    for r in sorted(rows, key=lambda r: r["n"]):
        x = ratio(r.get("add_worker"), r.get("noop"))
        out.append(("add-worker <= 1.3x no-op at N=%d" % r["n"],
                    "add-worker %s s / no-op %s s = %s" % (_fmt(r.get("add_worker")), _fmt(r.get("noop")), _fmt(x, "x")),
                    None if x is None else x <= 1.3))
    g = growth([r["n"] for r in rows], [r.get("noop") for r in rows])
    out.append(("no-op grows sub-linearly in N",
                "x%.2f for x%.2f nodes" % (g["value_ratio"], g["n_ratio"]) if g else "needs two sizes",
                g["sublinear"] if g else None))
    return out


# --------------------------------------------------------------------------
# Running things
# --------------------------------------------------------------------------

class StepFailed(RuntimeError):
    pass


def progress(msg):
    print("[bench %s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


class Bench:
    def __init__(self, args):
        self.args = args
        self.work = Path(args.workdir)
        self.work.mkdir(parents=True, exist_ok=True)
        self.env = dict(os.environ)
        self.env["CONTAINERS_CONF"] = str(ROOT / "molecule/resources/containers.conf")
        self.env["ANSIBLE_CONFIG"] = str(ROOT / "ansible.cfg")
        # the lab's pipelining transport (molecule/resources/plugins/connection)
        self.env["ANSIBLE_CONNECTION_PLUGINS"] = str(ROOT / CONNECTION_PLUGINS)
        self.env["PATH"] = "%s:%s" % (VENV_BIN, self.env.get("PATH", ""))
        self.env["ANSIBLE_FORCE_COLOR"] = "0"
        self.env["ANSIBLE_NOCOLOR"] = "1"
        self.step = 0
        self.spec_path = None

    def run(self, label, cmd, env=None, check=True):
        """Run CMD from the project root, output to a log file; return
        (seconds, CompletedProcess)."""
        self.step += 1
        log = self.work / ("%03d-%s" % (self.step, re.sub(r"[^A-Za-z0-9_.-]+", "_", label)))
        out_path, err_path = Path(str(log) + ".out"), Path(str(log) + ".err")
        with open(out_path, "w") as out, open(err_path, "w") as err:
            start = time.monotonic()
            child = subprocess.Popen([str(c) for c in cmd], cwd=ROOT, env=env or self.env, stdout=out, stderr=err)
            try:
                while True:
                    try:
                        rc = child.wait(timeout=HEARTBEAT)
                        break
                    except subprocess.TimeoutExpired:
                        progress("  ... %s still running (%.0f s)" % (label, time.monotonic() - start))
            except BaseException:
                child.terminate()
                try:
                    child.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait()
                raise
            seconds = time.monotonic() - start
        proc = subprocess.CompletedProcess(cmd, rc, out_path.read_text(), err_path.read_text())
        if check and proc.returncode != 0:
            raise StepFailed("%s failed (rc=%d, %.1f s); logs: %s.out/.err\n%s" % (
                label, proc.returncode, seconds, log, proc.stderr[-2000:] or proc.stdout[-2000:]))
        return seconds, proc

    # -- lab ---------------------------------------------------------------
    def write_spec(self, n):
        inv_full = self.work / ("inventory-%d-full.yml" % n)
        spec = make_spec(n, self.args.subnet, self.args.repo_dir, inv_full,
                         name=self.args.lab_name, network=self.args.network, connection=self.args.connection)
        self.spec_path = self.work / ("spec-%d.yml" % n)
        self.spec_path.write_text(yaml.safe_dump(spec, sort_keys=False))
        return spec

    def create_lab(self, spec):
        n = len(spec["nodes"]) - 1
        progress("N=%d: creating %d containers on %s (%s)" % (n, n + 1, spec["network"], spec["subnet"]))
        secs, _ = self.run("lab_create-%d" % n, ["ansible-playbook", LAB_CREATE, "-e", "kubelab_lab_spec=%s" % self.spec_path])
        full = yaml.safe_load(Path(spec["inventory_out"]).read_text())
        base = inventory_without(full, extra_node(spec))
        inv_base = self.work / ("inventory-%d.yml" % n)
        inv_base.write_text(yaml.safe_dump(base, sort_keys=False))
        progress("N=%d: lab up in %.1f s" % (n, secs))
        return inv_base, Path(spec["inventory_out"])

    def destroy_lab(self):
        if self.spec_path is None:
            return
        progress("destroying the lab (%s)" % self.args.lab_name)
        # The clean-up itself is not interruptible (the children inherit this).
        old = signal.signal(signal.SIGINT, signal.SIG_IGN)
        old_term = signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            self.run("lab_destroy", ["ansible-playbook", LAB_DESTROY, "-e", "kubelab_lab_spec=%s" % self.spec_path], check=False)
            left = subprocess.run(["podman", "ps", "-a", "-q", "--filter", "label=kubelab.lab=%s" % self.args.lab_name],
                                  env=self.env, capture_output=True, text=True).stdout.split()
            net = subprocess.run(["podman", "network", "exists", self.args.network], env=self.env).returncode == 0
            if left or net:
                progress("WARNING: left behind after destroy: containers %s, network %s" % (left, net))
        finally:
            signal.signal(signal.SIGINT, old)
            signal.signal(signal.SIGTERM, old_term)

    # -- measurements ------------------------------------------------------
    def json_env(self):
        env = dict(self.env)
        # Only the stdout callback differs from ansible.cfg: the JSON document
        # is found among the lines profile_tasks prints (extract_json).
        env["ANSIBLE_STDOUT_CALLBACK"] = "ansible.posix.json"
        return env

    def site(self, label, inventory, extra=()):
        cmd = ["ansible-playbook", "site.yml", "-i", inventory,
               "-e", "kubelab_artifacts_dir=%s" % (self.work / "artifacts"), *extra]
        secs, proc = self.run(label, cmd, env=self.json_env(), check=False)
        try:
            doc = extract_json(proc.stdout)
        except ValueError:
            doc = None
        if proc.returncode != 0:
            where = failures(doc) if doc else []
            detail = "; ".join("task %r on %s: %s" % w for w in where) if where else proc.stderr[-2000:]
            raise StepFailed("%s: site.yml failed (rc=%d): %s" % (label, proc.returncode, detail))
        return secs, per_host_counts(doc) if doc else {}

    def floor(self, inventory, n, times):
        for i in range(self.args.repeat):
            secs, proc = self.run("floor-%d-%d" % (n, i), ["ansible", "all", "-i", inventory, "-m", "ansible.builtin.setup"],
                                  env=self.json_env())
            times.append(secs)
            progress("N=%d: floor run %d: %.1f s" % (n, i + 1, secs))
        return times

    def empty(self, inventory, n, times):
        """site.yml with a tag no task has: Ansible still starts, reads the
        inventory, runs every play and the argument validation (tagged
        always), and runs no task."""
        for i in range(self.args.repeat):
            secs, _ = self.site("empty-%d-%d" % (n, i), inventory, ["--tags", NO_TASK_TAG])
            times.append(secs)
            progress("N=%d: empty run %d: %.1f s" % (n, i + 1, secs))
        return times

    def reset_and_recreate_extra(self, spec, inv_base, inv_full, n):
        """Back to the state before the add: the worker reset out of the
        cluster, site.yml on the inventory without it (other nodes' /etc/hosts
        and the Services' externalIPs follow the inventory), a fresh
        container for it. Not timed."""
        name = extra_node(spec)
        self.run("reset-%s" % name, ["ansible-playbook", "playbooks/reset.yml", "-i", inv_full, "-e", "reset_node=%s" % name,
                                     "-e", "kubelab_artifacts_dir=%s" % (self.work / "artifacts")])
        self.site("restore-%d" % n, inv_base)
        self.run("rm-%s" % name, ["podman", "rm", "-f", "-t", "2", name])
        self.run("recreate-%s" % name, ["ansible-playbook", LAB_CREATE, "-e", "kubelab_lab_spec=%s" % self.spec_path])
        progress("N=%d: %s reset, lab reconverged without it, container re-created" % (n, name))

    def one_size(self, n, row):
        """Measure one lab size into ROW (filled as it goes, so a failure
        keeps what was measured)."""
        spec = self.write_spec(n)
        self.destroy_lab()  # leftovers of an interrupted earlier run
        converge_times = []
        for i in range(self.args.converge_repeat):
            if i > 0:
                self.destroy_lab()
            inv_base, inv_full = self.create_lab(spec)
            progress("N=%d: first converge %d/%d ..." % (n, i + 1, self.args.converge_repeat))
            secs, counts = self.site("converge-%d-%d" % (n, i), inv_base)
            converge_times.append(secs)
            row["converge_runs"] = converge_times
            row["converge_tasks_per_host"] = {h: c["tasks"] for h, c in counts.items()}
            row["converge_changed_per_host"] = {h: c["changed"] for h, c in counts.items()}
            progress("N=%d: first converge: %.1f s" % (n, secs))

        row["floor_runs"] = []
        self.floor(inv_base, n, row["floor_runs"])
        row["empty_runs"] = []
        self.empty(inv_base, n, row["empty_runs"])

        noop_runs, noop_counts = [], []
        for i in range(self.args.repeat):
            secs, counts = self.site("noop-%d-%d" % (n, i), inv_base)
            noop_runs.append(secs)
            noop_counts.append(counts)
            row["noop_runs"] = noop_runs
            changed = {h: c["changed_tasks"] for h, c in counts.items() if c["changed"]}
            progress("N=%d: no-op run %d: %.1f s, changed: %s" % (n, i + 1, secs, changed or "none"))
            if changed:
                row["findings"].append("no-op run %d changed tasks: %s" % (i + 1, changed))
        row["noop_tasks_per_host"] = {h: c["tasks"] for h, c in noop_counts[-1].items()}
        row["noop_skipped_per_host"] = {h: c["skipped"] for h, c in noop_counts[-1].items()}
        row["noop_changed_per_host"] = {h: c["changed"] for h, c in noop_counts[-1].items()}

        add_runs = []
        name = extra_node(spec)
        for i in range(self.args.repeat):
            if i > 0:
                self.reset_and_recreate_extra(spec, inv_base, inv_full, n)
            secs, counts = self.site("addworker-%d-%d" % (n, i), inv_full)
            add_runs.append(secs)
            row["add_worker_runs"] = add_runs
            others = {h: c["changed_tasks"] for h, c in counts.items() if c["changed"] and h != name}
            progress("N=%d: add-worker run %d: %.1f s (%s: %d tasks, %d changed; other hosts changed: %s)" % (
                n, i + 1, secs, name, counts.get(name, {}).get("tasks", 0), counts.get(name, {}).get("changed", 0),
                others or "none"))
            if others:
                row["findings"].append("add-worker run %d changed other hosts: %s" % (i + 1, others))
        self.destroy_lab()

    def verify_matrix(self):
        if self.args.verify_runs <= 0:
            return None, None
        progress("verify matrix on the namespace data plane (%d runs) ..." % self.args.verify_runs)
        _, proc = self.run("verify_matrix", [sys.executable, VERIFY_MATRIX, "--runs", str(self.args.verify_runs)], check=False)
        value = parse_verify_matrix(proc.stdout)
        if proc.returncode != 0 or value is None:
            return None, "verify_matrix.py rc=%d: %s" % (proc.returncode, (proc.stderr or proc.stdout)[-1000:])
        progress("verify matrix: median %.3f s" % value)
        return value, proc.stdout


def summarise(row):
    """Add the medians of the recorded runs to ROW."""
    for key in ("floor", "empty", "converge", "noop", "add_worker"):
        row[key] = median(row.get(key + "_runs", []))
    return row


def report(args, rows, verify, verify_out):
    rows = [summarise(r) for r in rows]
    sizes = [r["n"] for r in rows]
    print()
    print("kubelab lab benchmark, %s, repeat %d (first converge: %d run%s per N%s)" % (
        time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), args.repeat, args.converge_repeat,
        "" if args.converge_repeat == 1 else "s",
        ", NOT a median" if args.converge_repeat == 1 else ", median"))
    print("transport %s; load average at the end: %s" % (
        getattr(args, "connection", TRANSPORTS[0]), " ".join("%.2f" % x for x in os.getloadavg())))
    print(table(rows))
    g = growth(sizes, [r.get("noop") for r in rows])
    if g:
        print("no-op growth N=%d -> %d: x%.2f for x%.2f nodes: %s" % (
            g["from"], g["to"], g["value_ratio"], g["n_ratio"], "sub-linear" if g["sublinear"] else "NOT sub-linear"))
    for key, label in (("floor", "floor"), ("converge", "first converge"), ("add_worker", "add-worker")):
        g2 = growth(sizes, [r.get(key) for r in rows])
        if g2:
            print("%s growth N=%d -> %d: x%.2f for x%.2f nodes" % (label, g2["from"], g2["to"], g2["value_ratio"], g2["n_ratio"]))
    if verify is not None:
        print("verify matrix (namespace data plane, independent of N): median %.3f s" % verify)
    elif verify_out:
        print("verify matrix: not measured: %s" % verify_out)
    for r in rows:
        for f in r["findings"]:
            print("FINDING N=%d: %s" % (r["n"], f))
    print("targets (issue 8):")
    for name, figures, met in targets(rows):
        print("  %-36s %-44s %s" % (name, figures, {True: "met", False: "MISSED", None: "not measured"}[met]))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--nodes", default="3,10,20", help="lab sizes, comma separated (default 3,10,20)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure, median reported (default 3)")
    parser.add_argument("--converge-repeat", type=int, default=1,
                        help="first-converge runs per N; each extra one destroys and re-creates the lab (default 1)")
    parser.add_argument("--verify-runs", type=int, default=5, help="runs of bench/verify_matrix.py (0: skip)")
    parser.add_argument("--repo-dir", default="/var/cache/kubelab-standins-bench", help="stand-in repository directory")
    parser.add_argument("--subnet", default="192.168.254.0/24")
    parser.add_argument("--network", default=LAB_NAME)
    parser.add_argument("--lab-name", default=LAB_NAME)
    parser.add_argument("--workdir", default="/tmp/kubelab-bench-%s" % time.strftime("%Y%m%dT%H%M%S"),
                        help="specs, inventories and logs of every step")
    parser.add_argument("--connection", choices=TRANSPORTS, default=TRANSPORTS[0],
                        help="how Ansible reaches the lab nodes: kubelab_podman pipelines (one podman exec per "
                             "module, default), containers.podman.podman does not (default %(default)s)")
    parser.add_argument("--json", dest="json_path", help="save the raw numbers here")
    parser.add_argument("--skip-build", action="store_true", help="do not run the image and stand-in builds")
    args = parser.parse_args(argv)
    try:
        sizes = parse_nodes(args.nodes)
    except ValueError as exc:
        parser.error(str(exc))
    if args.repeat < 1 or args.converge_repeat < 1:
        parser.error("--repeat and --converge-repeat must be >= 1")

    def on_term(signum, frame):
        raise KeyboardInterrupt("signal %d" % signum)
    signal.signal(signal.SIGTERM, on_term)

    bench = Bench(args)
    progress("work directory %s" % bench.work)
    rows, status = [], 0
    verify, verify_out = None, None
    inotify_before = raise_inotify_quota(max(sizes) + 1)
    try:
        if not args.skip_build:
            progress("building/reusing node images and the stand-in repository ...")
            bench.run("image-build", ["bash", IMAGE_BUILD, "all"])
            bench.run("standins-build", ["bash", STANDINS_BUILD, args.repo_dir])
        for n in sizes:
            rows.append({"n": n, "findings": []})
            bench.one_size(n, rows[-1])
        verify, verify_out = bench.verify_matrix()
    except StepFailed as exc:
        progress("FAILED: %s" % exc)
        status = 1
    except KeyboardInterrupt:
        progress("interrupted")
        status = 130
    finally:
        bench.destroy_lab()
        restore_inotify_quota(inotify_before)
    for row in rows:
        summarise(row)
    if rows:
        report(args, rows, verify, verify_out)
    if args.json_path:
        Path(args.json_path).write_text(json.dumps({
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "repeat": args.repeat,
            "converge_repeat": args.converge_repeat, "loadavg_end": os.getloadavg(), "rows": rows,
            "verify_matrix_median": verify, "status": status}, indent=2))
    return status


if __name__ == "__main__":
    sys.exit(main())
