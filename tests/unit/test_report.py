"""module_utils/kubelab_report.py and the kubelab_verify_report module."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from ansible.module_utils import kubelab_checks as c
from ansible.module_utils import kubelab_report as rep
from ansible.module_utils.testing import patch_module_args

import kubelab_verify_report
from kubelab import report as cli_report

pytestmark = pytest.mark.unit


def sample():
    return [
        c.make_result("http:nginx-svc:10.20.2.235:80", "external", "controller", "nginx-svc 10.20.2.235:80",
                      "GET http://10.20.2.235:80/", "HTTP 200", "HTTP 200, 615 bytes, pattern found", "pass",
                      duration=0.01),
        c.make_result("dns:nginx-svc", "pod", "pod test/busybox", "nginx-svc", "nslookup nginx-svc",
                      "answered by 10.96.0.10", "server 10.96.0.10; no answer; errors: x NXDOMAIN", "fail",
                      stdout="** server can't find x: NXDOMAIN", exit_code=1, reason="nxdomain"),
        c.skipped("spread:*", "spread", "verify_data_plane is false: this lab runs no pods"),
        c.make_result("node:w1:crio-active", "node", "w1", "crio.service", "systemd unit state", "running",
                      "running", "pass"),
    ]


def test_summary_never_counts_skips_as_passed():
    s = rep.summarize(sample())
    assert (s["pass"], s["fail"], s["skip"], s["total"]) == (2, 1, 1, 4)
    assert s["failed_ids"] == ["dns:nginx-svc"] and s["skipped_ids"] == ["spread:*"]
    assert s["ok"] is False
    only_skips = rep.summarize([c.skipped("pod:*", "pod", "off")])
    assert only_skips["ok"] is False


def test_junit_structure():
    root = ET.fromstring(rep.to_junit(sample()))
    assert root.get("tests") == "4" and root.get("failures") == "1" and root.get("skipped") == "1"
    suites = [s.get("name") for s in root.iter("testsuite")]
    assert suites == ["kubelab.verify.node", "kubelab.verify.external", "kubelab.verify.spread", "kubelab.verify.pod"]
    case = [t for t in root.iter("testcase") if t.get("name") == "dns:nginx-svc"][0]
    failure = case.find("failure")
    assert failure.get("type") == "nxdomain" and "NXDOMAIN" in failure.get("message")
    assert "NXDOMAIN" in case.find("system-out").text
    skipped = [t for t in root.iter("testcase") if t.get("name") == "spread:*"][0].find("skipped")
    assert "verify_data_plane is false" in skipped.get("message")


def test_table_lists_failures_and_not_run_with_reasons():
    table = rep.render_table(sample())
    lines = table.splitlines()
    assert lines[0].startswith("VERDICT")
    assert any(line.startswith("FAIL    dns:nginx-svc") for line in lines)
    assert "4 checks: 2 passed, 1 failed, 1 not run" in table
    assert "FAILED dns:nginx-svc: expected answered by 10.96.0.10; observed server 10.96.0.10" in table
    assert "NOT RUN spread:*: verify_data_plane is false" in table
    # node checks come first
    assert lines[2].split()[1].startswith("node:")


def test_written_json_is_what_the_kubelab_cli_reads(tmp_path):
    paths = rep.write_report(str(tmp_path / "report"), sample(), {"namespace": "test"})
    found = cli_report.find_report(tmp_path)
    assert str(found) == paths["json"]
    loaded = cli_report.load_report(found)
    assert [r["id"] for r in loaded] == [r["id"] for r in rep.ordered(sample())]
    assert cli_report.tally(loaded) == {"pass": 2, "fail": 1, "skip": 1}
    assert cli_report.passed(loaded) is False
    doc = json.loads(open(paths["json"]).read())
    assert doc["meta"] == {"namespace": "test"} and doc["summary"]["fail"] == 1


def run_module(args, capsys, check_mode=False):
    if check_mode:
        args = dict(args, _ansible_check_mode=True)
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exc:
            kubelab_verify_report.main()
    return exc.value.code, json.loads(capsys.readouterr().out)


def test_report_module_fails_naming_failed_checks(tmp_path, capsys):
    rc, out = run_module({"results": sample(), "report_dir": str(tmp_path)}, capsys)
    assert rc == 1 and out["failed"] is True and out["changed"] is False
    assert out["msg"].startswith("1 of 4 checks failed: dns:nginx-svc (expected answered by 10.96.0.10;")
    assert (tmp_path / "verify.json").exists() and (tmp_path / "verify-junit.xml").exists()


def test_report_module_node_only_lab(tmp_path, capsys):
    nodes = [{"host": "cp1", "crio": {"default_capabilities": ["CHOWN", "NET_RAW"], "origin": {}},
              "services": {"crio.service": {"state": "running"}, "kubelet.service": {"state": "running"}}}]
    not_run = [{"id": "pod:*", "stage": "pod", "reason": "verify_data_plane is false"}]
    rc, out = run_module({"nodes": nodes, "not_run": not_run, "report_dir": str(tmp_path)}, capsys)
    assert rc == 0 and out["summary"]["pass"] == 3 and out["summary"]["skip"] == 1
    assert out["summary"]["skipped_ids"] == ["pod:*"]
    assert any("NOT RUN pod:*: verify_data_plane is false" in line for line in out["table_lines"])
    assert out["message"] == "3 checks passed, 1 not run"


def test_report_module_check_mode_writes_nothing(tmp_path, capsys):
    rc, out = run_module({"results": sample()[:1], "report_dir": str(tmp_path / "r")}, capsys, check_mode=True)
    assert rc == 0 and out["written"] is False and out["paths"] == {}
    assert not (tmp_path / "r").exists()


def test_report_module_nothing_passed_is_a_failure(tmp_path, capsys):
    rc, out = run_module({"not_run": [{"id": "pod:*", "reason": "off"}], "report_dir": str(tmp_path)}, capsys)
    assert rc == 1 and out["msg"].startswith("no check passed")
