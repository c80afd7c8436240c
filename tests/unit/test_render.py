"""Rendering of the verify stage's JSON report and of the host summary."""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from kubelab import report
from kubelab.errors import KubelabError
from kubelab.events import HostCounts

pytestmark = pytest.mark.unit

RESULTS = [
    {"id": "http-external", "stage": "external", "source": "controller", "target": "10.20.2.235:80",
     "request": "GET /", "expected": "Welcome to nginx!", "observed": "Welcome to nginx!",
     "verdict": "pass", "duration": 0.02},
    {"id": "ping-pod", "stage": "pod", "source": "busybox", "target": "10.244.1.5",
     "request": "ping -c1", "expected": "reply", "observed": "permission denied (are you root?)",
     "stderr": "ping: permission denied (are you root?)", "exit_code": 1, "attempts": 3,
     "verdict": "fail", "duration": 1.5},
    {"id": "ping-clusterip", "stage": "pod", "source": "busybox", "target": "10.96.0.20",
     "expected": "no answer (a Service is not a host)", "observed": None, "verdict": "skip"},
    {"id": "dns", "stage": "pod", "source": "busybox", "target": "nginx-svc",
     "expected": {"server": "10.96.0.10"}, "observed": {"server": "10.96.0.10"}, "verdict": "pass"},
]


def test_failing_stage_comes_first_and_failures_lead_their_stage():
    text = report.render_checks(RESULTS)
    lines = text.splitlines()
    assert lines[0] == "== pod: 1 passed, 1 failed, 1 skipped"
    assert lines[1].startswith("  FAIL  ping-pod  busybox -> 10.244.1.5")
    assert lines[2] == "          expected: reply"
    assert lines[3] == "          observed: permission denied (are you root?)"
    assert "stderr:   ping: permission denied" in lines[4]
    assert "exit code 1, attempts 3" in lines[5]
    pod_rows = [line for line in lines if line.startswith("  PASS") or line.startswith("  SKIP")]
    assert pod_rows[0].startswith("  PASS  dns") and pod_rows[1].startswith("  SKIP  ping-clusterip")
    ext = lines.index("== external: 1 passed, 0 failed, 0 skipped")
    assert ext > lines.index(pod_rows[1])
    assert lines[-1] == "4 checks: 2 passed, 1 failed, 1 skipped"
    # Structured values are shown as compact JSON, passes without expected/observed.
    assert not any("expected: {" in line for line in lines)


def test_missing_keys_and_odd_verdicts_are_tolerated():
    text = report.render_checks([{"verdict": "pass"}, {"id": "x"}, {"id": "y", "verdict": "PASS"}])
    assert "== -: 2 passed, 1 failed, 0 skipped" in text
    assert "  FAIL  x  -" in text  # no verdict -> counted as a failure, not hidden
    assert "expected: -" in text and "observed: -" in text


def test_passed_needs_at_least_one_pass_and_no_failure():
    assert not report.passed([])
    assert not report.passed(RESULTS)
    assert report.passed([RESULTS[0], RESULTS[2]])
    assert not report.passed([RESULTS[2]])


def test_junit_has_one_suite_per_stage(tmp_path):
    path = tmp_path / "out" / "verify.xml"
    report.write_junit(RESULTS, path)
    root = ET.parse(path).getroot()
    assert root.get("tests") == "4" and root.get("failures") == "1" and root.get("skipped") == "1"
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert set(suites) == {"external", "pod"}
    failure = suites["pod"].find("testcase/failure")
    assert failure.get("message") == "expected reply, observed permission denied (are you root?)"
    assert "exit_code: 1" in failure.text
    assert suites["external"].find("testcase").get("time") == "0.020"
    assert len(suites["pod"].findall("testcase/skipped")) == 1


def test_find_report_takes_the_newest_written_by_this_run(tmp_path):
    directory = tmp_path / "report"
    directory.mkdir()
    old = directory / "old.json"
    old.write_text("[]")
    os.utime(old, ns=(1000, 1000))
    before = report.snapshot(tmp_path)
    assert report.find_report(tmp_path) == old
    assert report.find_report(tmp_path, before=before) is None
    new = directory / "verify.json"
    new.write_text(json.dumps(RESULTS))
    assert report.find_report(tmp_path, before=before) == new
    os.utime(old, ns=(10**20, 10**20))  # rewritten by this run, and newest
    assert report.find_report(tmp_path, before=before) == old
    assert report.find_report(tmp_path / "nowhere") is None


def test_load_report_errors_are_one_sentence(tmp_path):
    bad = tmp_path / "r.json"
    bad.write_text("{not json")
    with pytest.raises(KubelabError, match="is not valid JSON"):
        report.load_report(bad)
    bad.write_text('"text"')
    with pytest.raises(KubelabError, match="not a list of check results"):
        report.load_report(bad)
    bad.write_text(json.dumps({"results": RESULTS}))
    assert len(report.load_report(bad)) == 4


def test_host_summary_marks_hosts_that_did_not_converge():
    text = report.render_hosts({
        "cp1": HostCounts(ok=5, changed=2),
        "w2": HostCounts(unreachable=1),
    })
    lines = text.splitlines()
    assert lines[0].split() == ["host", "ok", "changed", "failed", "unreachable", "skipped"]
    assert lines[1].split() == ["cp1", "5", "2", "0", "0", "0"]
    assert lines[2].split()[:6] == ["w2", "0", "0", "0", "1", "0"]
    assert lines[2].endswith("<- not converged")
    assert report.render_hosts({}) == "No host results were recorded."


def test_renders_the_verify_roles_report(tmp_path):
    """The document roles/verify writes (module_utils/kubelab_report.py)."""
    from ansible.module_utils.kubelab_checks import make_result, skipped
    from ansible.module_utils.kubelab_report import write_report

    results = [
        make_result("http nginx-svc 192.0.2.11:80", "external", "controller", "192.0.2.11:80", "GET /",
                    "Welcome to nginx!", "connection refused", "fail", attempts=3, duration=1.2,
                    stderr="curl: (7) refused", exit_code=7),
        make_result("node cp1 crio", "node", "cp1", "crio", "systemctl is-active crio", "active", "active", "pass"),
        skipped("ping busybox", "pod", "no pods in this lab"),
    ]
    paths = write_report(str(tmp_path / "report"), results, meta={"nodes": ["cp1"]})
    assert report.find_report(tmp_path) == Path(paths["json"])
    loaded = report.load_report(Path(paths["json"]))
    assert len(loaded) == 3 and not report.passed(loaded)
    text = report.render_checks(loaded)
    lines = text.splitlines()
    assert lines[0] == "== external: 0 passed, 1 failed, 0 skipped"
    assert "          expected: Welcome to nginx!" in lines
    assert "          observed: connection refused" in lines
    assert "          exit code 7, attempts 3" in lines
    assert any(line.startswith("  SKIP  ping busybox") and line.endswith("not run: no pods in this lab") for line in lines)
    assert lines[-1] == "3 checks: 1 passed, 1 failed, 1 skipped"
