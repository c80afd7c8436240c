"""Read the verify stage's JSON report and render it: the check table grouped
by stage with failures first, the per-host recap, what changed per host,
JUnit XML and the HTML page (module_utils/kubelab_report_html.py, the
renderer the verify stage writes verify.html with).

The report is a list of result objects with the keys id, stage, source,
target, request, expected, observed, stdout, stderr, exit_code, attempts,
duration and verdict ("pass", "fail" or "skip"), optionally reason; or the
verify role's document {"summary": ..., "results": [...]}. Missing keys are
tolerated.
"""

from __future__ import annotations

import json
import textwrap
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from pathlib import Path

from kubelab.errors import KubelabError
from kubelab.events import HostCounts, clean

VERDICT_ORDER = {"fail": 0, "pass": 1, "skip": 2}


def report_dir(artifacts_dir: Path) -> Path:
    return artifacts_dir / "report"


def snapshot(artifacts_dir: Path) -> dict[Path, int]:
    """The JSON reports present now, with their modification times (ns)."""
    directory = report_dir(artifacts_dir)
    if not directory.is_dir():
        return {}
    return {p: p.stat().st_mtime_ns for p in directory.glob("*.json") if p.is_file()}


def find_report(artifacts_dir: Path, before: dict[Path, int] | None = None) -> Path | None:
    """The newest JSON report under <artifacts>/report/; with `before` (a
    snapshot taken before the run) only one this run wrote or rewrote."""
    current = snapshot(artifacts_dir)
    if before is not None:
        current = {p: t for p, t in current.items() if before.get(p) != t}
    if not current:
        return None
    return max(current, key=lambda p: current[p])


def load_report(path: Path) -> list[dict]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise KubelabError(f"The verification report {path} cannot be read: {exc.strerror}.") from None
    except ValueError as exc:
        raise KubelabError(f"The verification report {path} is not valid JSON ({exc}).") from None
    if isinstance(data, dict):
        # Tolerate a wrapper object such as {"results": [...]}.
        data = data.get("results", data.get("checks", []))
    if not isinstance(data, list):
        raise KubelabError(f"The verification report {path} is not a list of check results.")
    return [item for item in data if isinstance(item, dict)]


def load_document(path: Path) -> dict:
    """The whole JSON report (summary, meta, results); a bare list of
    results is wrapped as {"results": [...]}."""
    results = load_report(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # load_report said it already
        data = {}
    document = dict(data) if isinstance(data, dict) else {}
    document["results"] = results
    return document


def html_beside(json_path: Path) -> Path | None:
    """The verify stage's HTML page beside a JSON report, when it was written
    with (or after) that JSON report."""
    page = json_path.with_suffix(".html")
    try:
        if page.is_file() and page.stat().st_mtime_ns >= json_path.stat().st_mtime_ns - 2_000_000_000:
            return page
    except OSError:
        return None
    return None


def _html_renderer(root: Path):
    """render_html from the project's module_utils/kubelab_report_html.py
    (the file the verify stage renders with: one renderer)."""
    import importlib.util

    path = root / "module_utils" / "kubelab_report_html.py"
    spec = importlib.util.spec_from_file_location("kubelab_report_html", path)
    if spec is None or spec.loader is None or not path.is_file():
        raise KubelabError(f"The HTML report renderer {path} is missing.")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.render_html


def write_html(json_path: Path, out: Path, root: Path) -> Path:
    """Render the JSON report at json_path as the HTML page at out."""
    page = _html_renderer(root)(load_document(json_path))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(out)
    return out


def verdict(result: dict) -> str:
    value = str(result.get("verdict", "")).lower()
    return value if value in VERDICT_ORDER else "fail"


def tally(results: Iterable[dict]) -> dict[str, int]:
    counts = {"pass": 0, "fail": 0, "skip": 0}
    for result in results:
        counts[verdict(result)] += 1
    return counts


def passed(results: list[dict]) -> bool:
    """Verification passed: at least one check ran and none failed."""
    counts = tally(results)
    return counts["fail"] == 0 and counts["pass"] > 0


def _text(value: object) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return clean(value)


def _route(result: dict) -> str:
    source, target = result.get("source"), result.get("target")
    if source and target:
        return f"{_text(source)} -> {_text(target)}"
    return _text(target or source)


def render_checks(results: list[dict]) -> str:
    """The check table: stages with failures first, in each stage failures
    first with expected vs observed, then passes, then skips."""
    stages: dict[str, list[dict]] = {}
    for result in results:
        stages.setdefault(_text(result.get("stage")), []).append(result)
    ordered = sorted(
        stages.items(),
        key=lambda item: 0 if any(verdict(r) == "fail" for r in item[1]) else 1,
    )
    lines: list[str] = []
    for stage, items in ordered:
        counts = tally(items)
        lines.append(
            f"== {stage}: {counts['pass']} passed, {counts['fail']} failed, {counts['skip']} skipped"
        )
        items = sorted(items, key=lambda r: VERDICT_ORDER[verdict(r)])
        for result in items:
            mark = verdict(result).upper()
            request = result.get("request")
            what = _text(result.get("id"))
            line = f"  {mark:<4}  {what}  {_route(result)}"
            if request:
                line += f"  [{_text(request)}]"
            if verdict(result) == "skip" and result.get("reason"):
                line += f"  not run: {_text(result.get('reason'))}"
            lines.append(line)
            if verdict(result) == "fail":
                lines.append(f"          expected: {_text(result.get('expected'))}")
                lines.append(f"          observed: {_text(result.get('observed'))}")
                stderr = result.get("stderr")
                if stderr:
                    lines.append(f"          stderr:   {_text(stderr)[:200]}")
                if result.get("exit_code") not in (None, 0):
                    lines.append(f"          exit code {result.get('exit_code')}, attempts {_text(result.get('attempts'))}")
    counts = tally(results)
    lines.append(
        f"{len(results)} checks: {counts['pass']} passed, {counts['fail']} failed, {counts['skip']} skipped"
    )
    return "\n".join(lines)


def render_hosts(counts: dict[str, HostCounts]) -> str:
    """The per-host summary (ok counts include changed, as in Ansible's recap)."""
    if not counts:
        return "No host results were recorded."
    width = max(len("host"), *(len(h) for h in counts))
    head = f"{'host':<{width}}  {'ok':>4} {'changed':>7} {'failed':>6} {'unreachable':>11} {'skipped':>7}"
    lines = [head]
    for host in sorted(counts):
        c = counts[host]
        state = "" if c.converged else "  <- not converged"
        lines.append(
            f"{host:<{width}}  {c.ok:>4} {c.changed:>7} {c.failed:>6} {c.unreachable:>11} {c.skipped:>7}{state}"
        )
    return "\n".join(lines)


def render_changes(changes: Mapping[str, list[tuple[str, str]]], hosts: Iterable[str] = (), width: int = 100) -> str:
    """What changed per host: the tasks that reported a change, by stage, in
    the order they ran (a host of ``hosts`` with none says "nothing")."""
    lines = ["What changed:"]
    everyone = sorted(set(hosts) | set(changes))
    if not everyone:
        return "What changed: no host results were recorded."
    for host in everyone:
        items = list(changes.get(host) or [])
        if not items:
            lines.append(f"  {host}: nothing")
            continue
        lines.append(f"  {host}: {len(items)} task{'s' if len(items) != 1 else ''} changed")
        stages: dict[str, list[str]] = {}
        for stage, task in items:
            stages.setdefault(stage or "-", []).append(task)
        for stage, tasks in stages.items():
            lines.extend(textwrap.wrap(f"{stage}: " + "; ".join(tasks), width=width,
                                       initial_indent="    ", subsequent_indent="      "))
    return "\n".join(lines)


def write_junit(results: list[dict], path: Path) -> None:
    """JUnit XML: one test suite per stage, one test case per check."""
    suites = ET.Element("testsuites", name="kubelab verify")
    stages: dict[str, list[dict]] = {}
    for result in results:
        stages.setdefault(_text(result.get("stage")), []).append(result)
    total = tally(results)
    suites.set("tests", str(len(results)))
    suites.set("failures", str(total["fail"]))
    suites.set("skipped", str(total["skip"]))
    for stage, items in stages.items():
        counts = tally(items)
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=stage,
            tests=str(len(items)),
            failures=str(counts["fail"]),
            skipped=str(counts["skip"]),
        )
        for result in items:
            case = ET.SubElement(
                suite,
                "testcase",
                classname=f"kubelab.{stage}",
                name=f"{_text(result.get('id'))} {_route(result)}",
            )
            duration = result.get("duration")
            if isinstance(duration, (int, float)):
                case.set("time", f"{duration:.3f}")
            if verdict(result) == "fail":
                failure = ET.SubElement(
                    case,
                    "failure",
                    message=f"expected {_text(result.get('expected'))}, observed {_text(result.get('observed'))}",
                )
                failure.text = "\n".join(
                    f"{key}: {_text(result.get(key))}"
                    for key in ("request", "stdout", "stderr", "exit_code", "attempts")
                )
            elif verdict(result) == "skip":
                ET.SubElement(case, "skipped", message=_text(result.get("observed")))
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(suites).write(path, encoding="utf-8", xml_declaration=True)
