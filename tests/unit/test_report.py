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


# ------------------------------------------------------------------ HTML
from ansible.module_utils import kubelab_report_html as page  # noqa: E402


def html_of(results, meta=None):
    return page.render_html(rep.to_document(results, meta or {}))


def test_html_is_one_self_contained_file_without_script():
    text = html_of(sample())
    assert text.startswith("<!DOCTYPE html>") and "<style>" in text
    for needle in ("<script", "<link", "src=", "url(", "@import", "<img", "<iframe"):
        assert needle not in text.lower(), needle


def test_html_escapes_every_value():
    evil = '<script>alert("x")</script>&"\''
    result = c.make_result('dns:<b>"', "pod", evil, evil, "nslookup " + evil, evil, evil, "fail",
                           stdout=evil, stderr=evil, reason=evil)
    skip = c.skipped("pod:*", "pod", evil, evil)
    http = c.make_result("http:a:1.2.3.4:80", "external", evil, 'a 1.2.3.4:80 (externalIP)', "GET " + evil,
                         evil, evil, "fail", reason=evil,
                         details={"service": evil, "host": "1.2.3.4", "port": 80, "kind": "externalIP",
                                  "latency_ms": 1.0})
    spread = c.make_result("spread:" + evil, "spread", "controller", evil, evil, evil, evil, "fail", reason=evil,
                           details={"requests": 10, "threshold": 4, "counts": {evil: 3}, "backends": [evil]})
    text = html_of([result, skip, http, spread], {"namespace": evil, "nodes": [evil]})
    assert "<script" not in text and 'alert("x")' not in text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&quot;&#x27;" in text
    assert 'data-check="dns:&lt;b&gt;&quot;"' in text


def node_entries():
    return [{"host": "w1", "crio": {"default_capabilities": ["CHOWN", "NET_RAW"], "origin": {}},
             "services": {"crio": "running", "kubelet": "running"}},
            {"host": "w2", "services": {}, "crio": {"unreachable": True, "msg": "ssh: connect to host w2 port 22:\n"
                                                                                "Connection refused"}},
            {"host": "w3", "services": {}, "no_data": True,
             "crio": {"failed": True, "msg": "no data from this node (unreachable or failed earlier)"}}]


def test_an_unreachable_node_fails_its_checks_saying_it_was_not_checked():
    res = {r["id"]: r for r in c.node_checks(node_entries())}
    for check in ("crio-capabilities", "crio-active", "kubelet-active"):
        r = res["node:w2:%s" % check]
        assert r["verdict"] == "fail" and r["reason"] == "unreachable"
        assert r["observed"] == "not checked: w2 was unreachable (ssh: connect to host w2 port 22: Connection refused)"
        assert res["node:w3:%s" % check]["reason"] == "no_data"
    assert res["node:w1:crio-active"]["verdict"] == "pass"


def test_html_says_in_one_line_what_could_not_be_checked_and_why():
    not_run = [c.skipped(g["id"], g["stage"], "verify_data_plane is false: this lab runs no pods", g["target"])
               for g in ({"id": "external:*", "stage": "external", "target": "every externalIP x port and node x nodePort"},
                         {"id": "spread:*", "stage": "spread", "target": "load spreading per Service"},
                         {"id": "pod:*", "stage": "pod", "target": "ping / TCP / DNS from the probe pod"})]
    text = html_of(c.node_checks(node_entries()) + not_run)
    top = text.split('<h2 id="external">')[0]
    assert top.count('class="notchecked"') == 5 == text.count('class="notchecked"')  # one line each, once
    assert "Not checked: load spreading per Service (see above)." in text
    assert ("Not checked: <b>every externalIP x port and node x nodePort</b> &mdash; verify_data_plane is false: "
            "this lab runs no pods") in top
    assert ("Not checked: <b>node w2</b> &mdash; w2 was unreachable (ssh: connect to host w2 port 22: Connection "
            "refused)") in top
    assert "Not checked: <b>node w3</b> &mdash; no data from this node (unreachable or failed earlier)" in top
    # the node table holds w1's checks only; w2 and w3 are a line each, not three rows of "not found"
    table = text.split('id="node-table"')[1].split("</table>")[0]
    assert "node:w1:crio-active" in table and "w2" not in table and "not found" not in text
    assert "FAILED" in text and "6 check(s) failed: kubelab verify exits 3." in text


def test_html_grid_has_a_cell_per_check_with_verdict_and_latency():
    targets = {"services": [{"name": "nginx-svc-np", "namespace": "test", "external_ips": ["10.20.2.235"],
                             "ports": [{"port": 8081, "protocol": "TCP", "node_port": 31511}]}],
               "nodes": [{"name": "worker01", "addresses": ["10.20.2.235"]}]}
    cells = c.http_targets(targets)
    results = []
    for i, t in enumerate(cells):
        results.append(c.make_result(
            "http:%s:%s:%s" % (t["service"], t["host"], t["port"]), "external", "controller",
            "%s %s:%s (%s)" % (t["service"], t["host"], t["port"], t["kind"]), "GET x", "HTTP 200",
            "HTTP 200" if i == 0 else "timeout", "pass" if i == 0 else "fail", reason=None if i == 0 else "timeout",
            details={"latency_ms": 3.25, "service": t["service"], "host": t["host"], "port": t["port"],
                     "kind": t["kind"], "node": t.get("node")}))
    text = html_of(results)
    ext = text.split('id="grid-externalIP-controller"')[1].split("</table>")[0]
    assert '<th>nginx-svc-np:8081</th>' in ext and "<th>10.20.2.235</th>" in ext
    assert '<td class="cell pass" data-check="http:nginx-svc-np:10.20.2.235:8081"' in ext and "3.2 ms" in ext
    node = text.split('id="grid-nodePort-controller"')[1].split("</table>")[0]
    assert "<th>worker01 (10.20.2.235)</th>" in node and '<th>nginx-svc-np:31511</th>' in node
    assert '<td class="cell fail" data-check="http:nginx-svc-np:10.20.2.235:31511"' in node
    assert "timeout, 3.2 ms" in node
    # an older report without the structured details: parsed from the target text
    for r in results:
        r["details"] = {"latency_ms": 1.0}
    assert 'id="grid-nodePort-controller"' in html_of(results)


def test_html_bars_are_as_wide_as_each_pods_share():
    spread = c.make_result("spread:nginx-svc", "spread", "controller", "test/nginx-svc", "65 GETs", "fair", "x",
                           "fail", reason="below 13 of 65 requests: b (5)",
                           details={"requests": 65, "threshold": 13, "counted": 65, "counts": {"a": 60, "b": 5},
                                    "backends": ["a", "b"]})
    text = html_of([spread])
    assert 'data-count="60" style="width:92.31%"' in text
    assert '<span class="fill low" data-count="5" style="width:7.69%">' in text
    assert 'class="threshold" style="left:20.00%"' in text
    assert '<p class="reason">below 13 of 65 requests: b (5)</p>' in text


def test_write_report_writes_the_html_beside_the_json(tmp_path):
    paths = rep.write_report(str(tmp_path), sample(), {"namespace": "test"})
    assert paths["html"] == str(tmp_path / "verify.html")
    assert cli_report.html_beside(tmp_path / "verify.json") == tmp_path / "verify.html"
    text = (tmp_path / "verify.html").read_text()
    assert "nslookup nginx-svc" in text and "nxdomain" in text and "FAILED" in text


def test_the_cli_renders_the_same_page_from_the_json(tmp_path):
    from kubelab.project import PROJECT_ROOT

    paths = rep.write_report(str(tmp_path / "report"), sample(), {"namespace": "test"})
    out = cli_report.write_html(tmp_path / "report" / "verify.json", tmp_path / "copy" / "r.html", PROJECT_ROOT)
    strip = lambda t: "\n".join(line for line in t.splitlines() if "Generated" not in line)  # noqa: E731
    assert strip(out.read_text()) == strip(open(paths["html"]).read())


class ReportRunner:
    """Replays a recorded event stream and writes the report as the verify
    stage does (module_utils.kubelab_report.write_report)."""

    def __init__(self, results):
        self.results = results

    def run(self, request, progress):
        import json as _json
        from pathlib import Path as _Path

        from kubelab.runner import RunResult, replay

        events = _json.loads((_Path(__file__).resolve().parent.parent / "data" / "runner_events" /
                              "converged.events.json").read_text())
        tracker = replay(events, progress)
        rep.write_report(str(request.artifacts_dir / "report"), self.results, {"namespace": "test"})
        return RunResult(status="successful", rc=0, tracker=tracker, run_dir=None)


@pytest.mark.parametrize("results,code", [(sample(), 3), ([sample()[0], sample()[3]], 0)])
def test_kubelab_verify_html_and_up_print_the_page_and_exit_by_the_checks(tmp_path, results, code):
    import io

    from kubelab import cli

    inventory = tmp_path / "hosts.yml"
    inventory.write_text("all:\n  hosts:\n    cp1: {}\n")
    out, err = io.StringIO(), io.StringIO()
    argv = ["verify", "-i", str(inventory), "--artifacts-dir", str(tmp_path / "art"), "--html", str(tmp_path / "o.html")]
    assert cli.main(argv, out=out, err=err, runner_factory=lambda root: ReportRunner(results),
                    environ={"HOME": str(tmp_path)}) == code
    assert f"HTML report: {tmp_path / 'art' / 'report' / 'verify.html'}" in out.getvalue()
    assert f"HTML report written to {tmp_path / 'o.html'}" in out.getvalue()
    written = (tmp_path / "o.html").read_text()
    assert ("FAILED" in written) == (code == 3)
    out = io.StringIO()
    assert cli.main(["up", "-i", str(inventory), "--artifacts-dir", str(tmp_path / "art")], out=out, err=err,
                    runner_factory=lambda root: ReportRunner(results), environ={"HOME": str(tmp_path)}) == code
    assert f"HTML report: {tmp_path / 'art' / 'report' / 'verify.html'}" in out.getvalue()


def test_kubelab_demo_prints_the_html_report_path(tmp_path):
    from test_cli import PASSING
    from test_cli_demo import LabRunner, run_demo

    class DemoRunner(LabRunner):
        def run(self, request, progress):
            result = super().run(request, progress)
            if request.playbook.name == "site.yml":
                rep.write_report(str(request.artifacts_dir / "report"), sample()[:1], {})
            return result

    root = tmp_path / "project"
    for rel in ("site.yml", "ansible.cfg", "molecule/resources/image/build.sh",
                "molecule/resources/standins/build.sh", "molecule/resources/playbooks/lab_create.yml",
                "molecule/resources/playbooks/lab_destroy.yml", "molecule/resources/containers.conf"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("")
    home = tmp_path / "home"
    code, out, err, _runner, _commands = run_demo([], root, home, runner=DemoRunner([("converged", None),
                                                                                   ("converged", PASSING)]))
    assert code == 0, err
    page = home / "artifacts" / "report" / "verify.html"
    assert out.count(f"HTML report: {page}") == 2  # with the table, and again at the end
    assert out.rstrip().splitlines()[-2] == f"HTML report: {page}"
