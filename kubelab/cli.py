"""The `kubelab` command: the kubelab playbooks through ansible-runner.

`ansible-playbook site.yml -i inventory/lab` keeps working unchanged; this
command adds progress, a per-host summary, the verification table and clear
exit codes.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from kubelab import demo as demo_mod
from kubelab import inventory_check, report
from kubelab.errors import KubelabError
from kubelab.events import RunTracker
from kubelab.inventory_edit import add_worker as edit_add_worker
from kubelab.inventory_edit import check_address, check_name
from kubelab.project import project_root
from kubelab.runner import (
    DEFAULT_KEEP_RUNS,
    AnsibleRunner,
    Progress,
    Runner,
    RunRequest,
    RunResult,
)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_VERIFY = 3
EXIT_CANCELED = 130

EXIT_CODES = """\
exit codes:
  0    every host converged and verification passed (or the command succeeded)
  1    a host failed or was unreachable, or kubelab could not run
  2    wrong arguments
  3    the playbook ran but verification failed or wrote no report
  130  interrupted with Ctrl-C
"""

_VAR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# The preflight tasks that validate the input (playbooks/preflight.yml, roles/preflight).
INPUT_VALIDATION_TASKS = ("Validate the inventory, every host's variables", "Validate inventory, variables")


@dataclass
class Context:
    """What a command needs from the outside world (replaced in tests)."""

    root: Path
    out: TextIO
    err: TextIO
    runner_factory: Callable[[Path], Runner]
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    commands: demo_mod.Commands = field(default_factory=demo_mod.Subprocesses)
    which: Callable[[str], str | None] = shutil.which
    interactive: bool | None = None
    subnet_users: Callable[[str, str, Mapping[str, str]], list[str]] = demo_mod.networks_on_subnet

    def print(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def runner(self) -> Runner:
        return self.runner_factory(self.root)

    def progress(self) -> Progress:
        return Progress(self.out, interactive=self.interactive)


def _extra_var(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not _VAR_NAME.match(key):
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE with KEY a variable name, got {text!r}")
    return key, value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1, got {value}")
    return value


def build_parser(environ: Mapping[str, str] | None = None) -> argparse.ArgumentParser:
    environ = os.environ if environ is None else environ
    default_inventory = environ.get("KUBELAB_INVENTORY")
    default_artifacts = environ.get("KUBELAB_ARTIFACTS_DIR")

    inventory_only = argparse.ArgumentParser(add_help=False)
    inventory_only.add_argument(
        "-i", "--inventory", type=Path, default=Path(default_inventory) if default_inventory else None,
        help="inventory file or directory (default: $KUBELAB_INVENTORY, else the project's inventory/lab/hosts.yml)",
    )
    common = argparse.ArgumentParser(add_help=False, parents=[inventory_only])
    common.add_argument(
        "--artifacts-dir", type=Path, default=Path(default_artifacts) if default_artifacts else None,
        help="where run logs go and where the playbooks write the admin kubeconfig and the verification "
        "report; passed to the playbooks as kubelab_artifacts_dir "
        "(default: $KUBELAB_ARTIFACTS_DIR, else the project's artifacts/)",
    )
    common.add_argument(
        "--keep-runs", type=_positive, default=DEFAULT_KEEP_RUNS, metavar="N",
        help=f"keep the run logs (ansible-runner artifacts) of the last N runs (default {DEFAULT_KEEP_RUNS})",
    )

    parser = argparse.ArgumentParser(
        prog="kubelab",
        description="Build, verify and reset the kubelab cluster with its Ansible playbooks "
        "(run through ansible-runner from kubelab's own environment).",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    up = sub.add_parser(
        "up", parents=[common], epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter,
        help="build or converge the cluster (site.yml)",
        description="Run site.yml: progress while it runs, then a per-host summary and the "
        "verification table. Exit 0 only when every host converged and verification passed.",
    )
    up.add_argument(
        "--limit", metavar="PATTERN",
        help="refused: site.yml runs its controller stages (validation, workloads, verify) on localhost, which "
        "a limited run would skip; to add a worker use 'kubelab add-worker'",
    )
    up.add_argument("--tags", help="only tasks with these tags (comma-separated)")
    up.add_argument(
        "-e", "--extra-var", dest="extra_vars", action="append", type=_extra_var, default=[],
        metavar="KEY=VALUE", help="set a variable for this run (string value; repeatable); "
        "passed on ansible-playbook's command line, never written to disk",
    )
    up.set_defaults(func=cmd_up)

    verify = sub.add_parser(
        "verify", parents=[common], epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter,
        help="run only the verify stage and print the check table",
        description="Run playbooks/verify.yml and print the checks grouped by stage, failures first "
        "with expected and observed values.",
    )
    verify.add_argument("--json", type=Path, metavar="PATH", help="also copy the JSON report to PATH")
    verify.add_argument("--junit", type=Path, metavar="PATH", help="also write the checks as JUnit XML to PATH")
    verify.add_argument(
        "--html", type=Path, metavar="PATH",
        help="also write the report as one self-contained HTML page to PATH (the stage always writes one "
        "beside verify.json)",
    )
    verify.set_defaults(func=cmd_verify)

    add = sub.add_parser(
        "add-worker", parents=[common], epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter,
        help="add a worker to the inventory file and converge",
        description="Add NAME under the workers group of the inventory YAML file (comments and layout "
        "kept) with ansible_host and kubelab_node_ip set to the address, then run site.yml: only the "
        "new worker changes. A duplicate name or address, or an invalid one, is refused and the file "
        "is left unchanged.",
    )
    add.add_argument("name", metavar="NAME", help="the new worker's host name (also its Kubernetes node name)")
    add.add_argument("--address", required=True, metavar="IP", help="the worker's IP address")
    add.add_argument("--group", default="workers", help="inventory group of the workers (default: workers)")
    add.add_argument("--no-converge", action="store_true", help="only edit the inventory; do not run site.yml")
    add.set_defaults(func=cmd_add_worker)

    reset = sub.add_parser(
        "reset", parents=[common], epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter,
        help="take one node or the whole lab back to clean (playbooks/reset.yml)",
        description="Run playbooks/reset.yml for one worker (--node) or for every node (--all --yes).",
    )
    which = reset.add_mutually_exclusive_group(required=True)
    which.add_argument("--node", metavar="NAME", help="reset this worker only (the control plane only goes with --all)")
    which.add_argument("--all", action="store_true", help="reset every node of the inventory (needs --yes)")
    reset.add_argument("--yes", action="store_true", help="confirm --all")
    reset.set_defaults(func=cmd_reset)

    demo = sub.add_parser(
        "demo", epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter,
        help="build the OFFLINE container lab (stand-ins, not a real cluster) and converge it",
        description=demo_mod.BANNER + "\n\nBuilds the node images and the stand-in package repository, "
        "creates podman containers on the network " + demo_mod.NETWORK + " (" + demo_mod.SUBNET + "), "
        "runs site.yml against them and prints the report. State lives in $KUBELAB_HOME "
        "(default ~/.kubelab/demo). Needs root and podman.",
    )
    demo.add_argument(
        "--nodes", type=int, default=3, metavar="N",
        help=f"number of nodes: one control plane plus N-1 workers ({demo_mod.MIN_NODES}-{demo_mod.MAX_NODES}, default 3)",
    )
    demo.add_argument("--down", action="store_true", help="destroy the demo lab and remove its state")
    demo.add_argument(
        "--keep-runs", type=_positive, default=DEFAULT_KEEP_RUNS, metavar="N",
        help=f"keep the run logs of the last N runs (default {DEFAULT_KEEP_RUNS})",
    )
    demo.set_defaults(func=cmd_demo)

    inventory = sub.add_parser("inventory", help="inventory tools")
    inv_sub = inventory.add_subparsers(dest="inventory_command", metavar="ACTION", required=True)
    check = inv_sub.add_parser(
        "check", parents=[inventory_only],
        help="validate the inventory and variables without touching any host",
        description="Apply the validation that site.yml runs first on the controller "
        "(module_utils/kubelab_validate.py, with the roles' argument specs) to the inventory as Ansible "
        "reads it - every host's own variables and the controller's - and print every problem at once. "
        "Exit 0 when there is none, 1 otherwise. Values that are Jinja templates are checked by the "
        "playbook run, operating systems by the preflight stage on the hosts.",
    )
    check.set_defaults(func=cmd_inventory_check)
    return parser


# --- shared helpers ---------------------------------------------------------


def _inventory(ctx: Context, args: argparse.Namespace) -> Path:
    path = args.inventory or (ctx.root / "inventory" / "lab" / "hosts.yml")
    path = path.expanduser().resolve()
    if not path.exists():
        raise KubelabError(f"The inventory {path} does not exist.")
    return path


def _artifacts(ctx: Context, args: argparse.Namespace) -> Path:
    path = getattr(args, "artifacts_dir", None) or (ctx.root / "artifacts")
    return path.expanduser().resolve()


def _request(ctx: Context, args: argparse.Namespace, playbook: str, label: str, **kwargs) -> RunRequest:
    artifacts = _artifacts(ctx, args)
    extravars = dict(kwargs.pop("extravars", {}))
    extravars["kubelab_artifacts_dir"] = str(artifacts)
    return RunRequest(
        playbook=ctx.root / playbook,
        label=label,
        inventory=kwargs.pop("inventory", None) or _inventory(ctx, args),
        extravars=extravars,
        artifacts_dir=artifacts,
        keep_runs=args.keep_runs,
        **kwargs,
    )


def _cancel_message(ctx: Context, tracker: RunTracker) -> None:
    where = tracker.play or "before the first play"
    task = f", task '{tracker.task}'" if tracker.task else ""
    ctx.print(
        f"Cancelled during {where}{task}. The hosts may be part-way through that stage "
        "(packages half-installed, a service restarting, a node not yet joined); nothing was rolled back."
    )
    ctx.print("Rerun the same command to converge them (the playbooks are idempotent), "
              "or 'kubelab reset --node NAME' to take a node back to clean.")


def _last_output(result: RunResult, lines: int = 3) -> str:
    if result.run_dir is None:
        return ""
    try:
        text = (result.run_dir / "stdout").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    from kubelab.events import clean

    kept = [clean(line) for line in text.splitlines() if clean(line)]
    return " / ".join(kept[-lines:])


def _report_failures(ctx: Context, result: RunResult) -> None:
    """One sentence per failing host and task, no stack trace."""
    tracker = result.tracker
    if tracker.failures:
        for failure in tracker.failures:
            print(f"kubelab: error: {failure.sentence()}", file=ctx.err, flush=True)
    elif tracker.stats_seen and not tracker.counts:
        print("kubelab: error: no host of the inventory matched the playbook (check -i and --limit); nothing ran.",
              file=ctx.err, flush=True)
    elif not tracker.converged or result.status != "successful":
        detail = _last_output(result)
        where = f" (log: {result.run_dir / 'stdout'})" if result.run_dir else ""
        print(
            f"kubelab: error: ansible-playbook stopped before finishing (exit code {result.rc})"
            + (f": {detail}" if detail else "") + where,
            file=ctx.err, flush=True,
        )


def _input_problems(ctx: Context, result: RunResult, inventory: Path | None) -> None:
    """When preflight refused the input, print every problem (the failure line
    above is cut short): the same check as 'kubelab inventory check'."""
    refused = [f for f in result.tracker.failures if any(t in f.task for t in INPUT_VALIDATION_TASKS)]
    if not refused or inventory is None:
        return
    try:
        problems = inventory_check.check(ctx.root, inventory)
    except KubelabError:
        return
    if problems:
        print(f"kubelab: the input was refused before any host was changed ({len(problems)} "
              f"problem{'s' if len(problems) != 1 else ''}):", file=ctx.err, flush=True)
        for problem in problems:
            print(f"  - {problem}", file=ctx.err, flush=True)


def _show_report(ctx: Context, artifacts: Path, before: dict) -> tuple[Path | None, list[dict] | None]:
    path = report.find_report(artifacts, before=before)
    if path is None:
        return None, None
    results = report.load_report(path)
    ctx.print()
    ctx.print("Verification:")
    ctx.print(report.render_checks(results))
    ctx.print(f"Report: {path}")
    page = report.html_beside(path)
    if page is not None:
        ctx.print(f"HTML report: {page}")
    return path, results


def _only_verify_failed(tracker: RunTracker) -> bool:
    """Every failed task belongs to the verify stage: it fails the play when
    a check fails, which is a verification failure, not a convergence one."""
    return bool(tracker.failures) and all("verify" in f.play.lower() for f in tracker.failures)


def converge(ctx: Context, request: RunRequest) -> tuple[int, RunResult, list[dict] | None]:
    """Run site.yml (or verify.yml) and print the summary and the report.
    Returns the exit code, the run result and the verification results."""
    before = report.snapshot(request.artifacts_dir)
    result = ctx.runner().run(request, ctx.progress())
    if result.canceled:
        _cancel_message(ctx, result.tracker)
        return EXIT_CANCELED, result, None
    ctx.print()
    ctx.print(report.render_hosts(result.tracker.counts))
    ctx.print()
    ctx.print(report.render_changes(result.tracker.changes, result.tracker.counts))
    hosts_ok = result.tracker.converged and result.status == "successful"
    if not hosts_ok:
        _report_failures(ctx, result)
        _input_problems(ctx, result, request.inventory)
    path, results = _show_report(ctx, request.artifacts_dir, before)
    if path is None:
        ctx.print(f"No verification report was written by this run (looked in {report.report_dir(request.artifacts_dir)}).")
    if result.run_dir is not None:
        ctx.print(f"Run log: {result.run_dir}")
    verification_failed = results is not None and not report.passed(results)
    if not hosts_ok and not (verification_failed and _only_verify_failed(result.tracker)):
        return EXIT_FAILED, result, results
    if results is None or verification_failed:
        if results is not None:
            print("kubelab: error: verification failed; see the FAIL lines above.", file=ctx.err, flush=True)
        return EXIT_VERIFY, result, results
    return EXIT_OK, result, results


# --- commands ---------------------------------------------------------------


def limit_refusal(root: Path, limit: str) -> str:
    """site.yml's refusal of --limit, the one text the preflight role prints
    too (roles/preflight/vars/main.yml __preflight_limit_refusal), rendered
    with ansible_limit = LIMIT."""
    import yaml
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar, trust_as_template

    text = yaml.safe_load((root / "roles" / "preflight" / "vars" / "main.yml").read_text(encoding="utf-8"))[
        "__preflight_limit_refusal"]
    templar = Templar(loader=DataLoader(), variables={"ansible_limit": limit})
    return str(templar.template(trust_as_template(text))).strip()


def cmd_up(ctx: Context, args: argparse.Namespace) -> int:
    if args.limit:
        print(f"kubelab: error: {limit_refusal(ctx.root, args.limit)}", file=ctx.err, flush=True)
        return EXIT_USAGE
    request = _request(ctx, args, "site.yml", "up", tags=args.tags, extravars=dict(args.extra_vars))
    code, _result, _results = converge(ctx, request)
    return code


def cmd_verify(ctx: Context, args: argparse.Namespace) -> int:
    request = _request(ctx, args, "playbooks/verify.yml", "verify")
    before = report.snapshot(request.artifacts_dir)
    result = ctx.runner().run(request, ctx.progress())
    if result.canceled:
        _cancel_message(ctx, result.tracker)
        return EXIT_CANCELED
    hosts_ok = result.tracker.converged and result.status == "successful"
    if not hosts_ok:
        _report_failures(ctx, result)
    path, results = _show_report(ctx, request.artifacts_dir, before)
    if path is None or results is None:
        print(
            f"kubelab: error: the verify stage wrote no report in {report.report_dir(request.artifacts_dir)}.",
            file=ctx.err, flush=True,
        )
        return EXIT_FAILED if not hosts_ok else EXIT_VERIFY
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, args.json)
        ctx.print(f"JSON report copied to {args.json}")
    if args.junit:
        report.write_junit(results, args.junit)
        ctx.print(f"JUnit report written to {args.junit}")
    if args.html:
        report.write_html(path, args.html, ctx.root)
        ctx.print(f"HTML report written to {args.html}")
    if not report.passed(results):
        return EXIT_VERIFY
    return EXIT_OK if hosts_ok else EXIT_FAILED


def cmd_add_worker(ctx: Context, args: argparse.Namespace) -> int:
    check_name(args.name)
    address = check_address(args.address)
    inventory = _inventory(ctx, args)
    # validated as an edited copy first (the checks preflight runs): a
    # refused worker leaves the inventory as it was
    written = edit_add_worker(inventory, args.name, address, group=args.group,
                              check=lambda edited: inventory_check.check(ctx.root, edited))
    ctx.print(f"Added {args.name} ({address}) to group '{args.group}' in {written}.")
    if args.no_converge:
        ctx.print("Not converging (--no-converge): run 'kubelab up' to prepare and join it.")
        return EXIT_OK
    request = _request(ctx, args, "site.yml", "add-worker", inventory=inventory)
    code, result, results = converge(ctx, request)
    if code == EXIT_CANCELED:
        return code
    ctx.print()
    ctx.print(f"New node {args.name}:")
    counts = result.tracker.counts.get(args.name)
    if counts is None:
        ctx.print("  no results for it in this run (is it matched by --limit or the playbooks' host patterns?)")
    else:
        state = "converged" if counts.converged else "NOT converged"
        ctx.print(
            f"  {state}: ok={counts.ok} changed={counts.changed} failed={counts.failed} "
            f"unreachable={counts.unreachable}"
        )
    mine = [r for r in results or [] if args.name in (str(r.get("source")), str(r.get("target")))
            or address in (str(r.get("source")), str(r.get("target")))]
    if mine:
        tally = report.tally(mine)
        ctx.print(f"  checks involving it: {tally['pass']} passed, {tally['fail']} failed, {tally['skip']} skipped")
    return code


def cmd_reset(ctx: Context, args: argparse.Namespace) -> int:
    if args.all and not args.yes:
        raise KubelabError("'kubelab reset --all' removes the cluster from every node; add --yes to confirm.")
    if args.yes and not args.all:
        raise KubelabError("--yes only confirms --all.")
    if args.node:
        extravars: dict[str, object] = {"reset_node": args.node}
        label = "reset-node"
    else:
        extravars = {"reset_all": True, "reset_confirm": "yes"}
        label = "reset-all"
    request = _request(ctx, args, "playbooks/reset.yml", label, extravars=extravars)
    result = ctx.runner().run(request, ctx.progress())
    if result.canceled:
        _cancel_message(ctx, result.tracker)
        return EXIT_CANCELED
    ctx.print()
    ctx.print(report.render_hosts(result.tracker.counts))
    if result.run_dir is not None:
        ctx.print(f"Run log: {result.run_dir}")
    if result.tracker.converged and result.status == "successful":
        ctx.print(f"Reset done: {args.node or 'every node'}.")
        return EXIT_OK
    _report_failures(ctx, result)
    return EXIT_FAILED


def cmd_inventory_check(ctx: Context, args: argparse.Namespace) -> int:
    inventory = _inventory(ctx, args)
    problems = inventory_check.check(ctx.root, inventory)
    if not problems:
        ctx.print(f"{inventory}: no problems found.")
        return EXIT_OK
    ctx.print(f"{inventory}: {len(problems)} problem{'s' if len(problems) != 1 else ''}:")
    for problem in problems:
        ctx.print(f"  - {problem}")
    return EXIT_FAILED


def cmd_demo(ctx: Context, args: argparse.Namespace) -> int:
    paths = demo_mod.DemoPaths(demo_mod.demo_home(ctx.environ))
    if args.down:
        return _demo_down(ctx, args, paths)
    spec = demo_mod.lab_spec(args.nodes, paths)
    ctx.print(demo_mod.BANNER)
    ctx.print()
    tools = demo_mod.require_tooling(ctx.root, which=ctx.which)
    existing = demo_mod.read_spec(paths.spec)
    if existing is not None and len(existing.get("nodes") or []) != args.nodes:
        raise KubelabError(
            f"A demo lab with {len(existing.get('nodes') or [])} nodes already exists in {paths.home}; "
            "run 'kubelab demo --down' first to change its size."
        )
    env = demo_mod.lab_environ(ctx.root, ctx.environ)
    users = ctx.subnet_users(demo_mod.SUBNET, demo_mod.NETWORK, env)
    if users:
        raise KubelabError(
            f"The podman network {', '.join(users)} already uses {demo_mod.SUBNET}, the demo lab's subnet; "
            "remove it ('podman network rm NAME') before running the demo."
        )
    paths.home.mkdir(parents=True, exist_ok=True)
    ctx.print("[demo] building the node images (reused when unchanged)")
    _demo_step(ctx, [str(tools["image"])], env, "Building the node images")
    ctx.print("[demo] building the stand-in package repositories")
    _demo_step(ctx, [str(tools["standins"]), str(paths.standins)], env, "Building the stand-in repositories")
    demo_mod.write_yaml(paths.spec, spec)
    demo_mod.write_yaml(paths.controller_inventory, demo_mod.controller_inventory(sys.executable))
    ctx.print(f"[demo] creating {len(spec['nodes'])} node containers on {demo_mod.NETWORK} ({demo_mod.SUBNET})")
    create = RunRequest(
        playbook=tools["create"], label="demo-create", inventory=paths.controller_inventory,
        extravars={"kubelab_lab_spec": str(paths.spec)}, artifacts_dir=paths.artifacts, keep_runs=args.keep_runs,
    )
    runner = _LabRunner(ctx.runner(), env)
    result = runner.run(create, ctx.progress())
    if result.canceled:
        _cancel_message(ctx, result.tracker)
        _teardown_hint(ctx)
        return EXIT_CANCELED
    if not (result.tracker.converged and result.status == "successful"):
        _report_failures(ctx, result)
        _teardown_hint(ctx)
        return EXIT_FAILED
    if not paths.inventory.is_file():
        raise KubelabError(f"lab_create.yml finished but wrote no inventory at {paths.inventory}.")
    ctx.print("[demo] converging site.yml against the lab")
    converge_request = RunRequest(
        playbook=ctx.root / "site.yml", label="demo-up", inventory=paths.inventory,
        extravars={"kubelab_artifacts_dir": str(paths.artifacts)}, artifacts_dir=paths.artifacts,
        keep_runs=args.keep_runs,
    )
    sub_ctx = Context(
        root=ctx.root, out=ctx.out, err=ctx.err, runner_factory=lambda _root: runner,
        environ=ctx.environ, commands=ctx.commands, which=ctx.which, interactive=ctx.interactive,
        subnet_users=ctx.subnet_users,
    )
    code, _result, _results = converge(sub_ctx, converge_request)
    ctx.print()
    ctx.print(demo_mod.BANNER)
    ctx.print(f"Inventory of the demo lab: {paths.inventory}")
    found = report.find_report(paths.artifacts)
    page = report.html_beside(found) if found is not None else None
    if page is not None:
        ctx.print(f"HTML report: {page}")
    _teardown_hint(ctx)
    return code


class _LabRunner:
    """Runs lab playbooks with the lab's environment (CONTAINERS_CONF)."""

    def __init__(self, runner: Runner, environ: Mapping[str, str]) -> None:
        self.inner = runner
        if isinstance(runner, AnsibleRunner):
            runner.environ = dict(environ)

    def run(self, request: RunRequest, progress: Progress) -> RunResult:
        return self.inner.run(request, progress)


def _demo_step(ctx: Context, argv: list[str], env: Mapping[str, str], what: str) -> None:
    code = ctx.commands.run(argv, env, ctx.root)
    if code != 0:
        raise KubelabError(f"{what} failed ({Path(argv[0]).relative_to(ctx.root)} exited {code}); see its output above.")


def _teardown_hint(ctx: Context) -> None:
    ctx.print("Tear the demo lab down with: kubelab demo --down")


def _demo_down(ctx: Context, args: argparse.Namespace, paths: demo_mod.DemoPaths) -> int:
    if demo_mod.read_spec(paths.spec) is None:
        ctx.print(f"No demo lab found in {paths.home}; nothing to tear down.")
        return EXIT_OK
    ctx.print(f"[demo] destroying the OFFLINE demo lab described in {paths.spec}")
    destroy = ctx.root / "molecule" / "resources" / "playbooks" / "lab_destroy.yml"
    if not destroy.is_file():
        raise KubelabError(f"The offline lab tooling is incomplete: {destroy.relative_to(ctx.root)} is missing.")
    if not paths.controller_inventory.is_file():
        demo_mod.write_yaml(paths.controller_inventory, demo_mod.controller_inventory(sys.executable))
    request = RunRequest(
        playbook=destroy, label="demo-destroy", inventory=paths.controller_inventory,
        extravars={"kubelab_lab_spec": str(paths.spec)}, artifacts_dir=paths.artifacts, keep_runs=args.keep_runs,
    )
    runner = _LabRunner(ctx.runner(), demo_mod.lab_environ(ctx.root, ctx.environ))
    result = runner.run(request, ctx.progress())
    if result.canceled:
        _cancel_message(ctx, result.tracker)
        return EXIT_CANCELED
    if not (result.tracker.converged and result.status == "successful"):
        _report_failures(ctx, result)
        ctx.print(f"The demo state in {paths.home} was kept; rerun 'kubelab demo --down' after fixing the error.")
        return EXIT_FAILED
    removed = demo_mod.remove_state(paths)
    ctx.print(f"The demo lab is gone (containers, network); removed {len(removed)} state entries from {paths.home}.")
    return EXIT_OK


def main(
    argv: list[str] | None = None,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
    runner_factory: Callable[[Path], Runner] | None = None,
    environ: Mapping[str, str] | None = None,
    commands: demo_mod.Commands | None = None,
    which: Callable[[str], str | None] | None = None,
    root: Path | None = None,
    subnet_users: Callable[[str, str, Mapping[str, str]], list[str]] | None = None,
) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    environ = dict(os.environ if environ is None else environ)
    parser = build_parser(environ)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return int(exc.code or 0)
    try:
        ctx = Context(
            root=root or project_root(),
            out=out,
            err=err,
            runner_factory=runner_factory or (lambda r: AnsibleRunner(r, environ)),
            environ=environ,
            commands=commands or demo_mod.Subprocesses(),
            which=which or shutil.which,
            subnet_users=subnet_users or demo_mod.networks_on_subnet,
        )
        return args.func(ctx, args)
    except KubelabError as exc:
        print(f"kubelab: error: {exc}", file=err, flush=True)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("kubelab: interrupted.", file=err, flush=True)
        return EXIT_CANCELED
    except OSError as exc:
        if environ.get("KUBELAB_DEBUG"):
            raise
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"kubelab: error: {exc.strerror or exc}{where}.", file=err, flush=True)
        return EXIT_FAILED
    except Exception as exc:  # a bug in kubelab: still one sentence, traceback on request
        if environ.get("KUBELAB_DEBUG"):
            raise
        print(f"kubelab: internal error: {type(exc).__name__}: {exc} (set KUBELAB_DEBUG=1 for the traceback).",
              file=err, flush=True)
        return EXIT_FAILED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
