# -*- coding: utf-8 -*-
# Copyright: kubelab developers
# MIT License
"""The verification report: JSON, JUnit XML, a readable table and HTML.

Input is the list of result dicts of ``kubelab_checks.make_result`` (keys id,
stage, source, target, request, expected, observed, stdout, stderr,
exit_code, attempts, duration, verdict, reason, details). A skipped check is
never counted as passed: the summary lists it with its reason.
"""

from __future__ import absolute_import, division, print_function

import json
import os
import time
import xml.etree.ElementTree as ET

from ansible.module_utils.kubelab_report_html import HTML_NAME, render_html

__metaclass__ = type

STAGE_ORDER = ("node", "external", "spread", "pod")
JSON_NAME = "verify.json"
JUNIT_NAME = "verify-junit.xml"
TABLE_NAME = "verify.txt"


def summarize(results):
    counts = {"pass": 0, "fail": 0, "skip": 0, "total": len(results)}
    for r in results:
        counts[r.get("verdict") if r.get("verdict") in ("pass", "fail", "skip") else "fail"] += 1
    counts["failed_ids"] = [r["id"] for r in results if r.get("verdict") not in ("pass", "skip")]
    counts["skipped_ids"] = [r["id"] for r in results if r.get("verdict") == "skip"]
    counts["ok"] = counts["fail"] == 0 and counts["pass"] > 0
    return counts


def ordered(results):
    def key(item):
        index, r = item
        stage = r.get("stage")
        return (STAGE_ORDER.index(stage) if stage in STAGE_ORDER else len(STAGE_ORDER), index)
    return [r for _i, r in sorted(enumerate(results), key=key)]


def to_document(results, meta=None):
    return {"kubelab_verify_report": 1,
            "generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "meta": meta or {}, "summary": summarize(results), "results": ordered(results)}


def to_junit(results, suite_name="kubelab.verify"):
    """JUnit XML: one testsuite per stage, one testcase per check."""
    root = ET.Element("testsuites", name=suite_name)
    by_stage = {}
    for r in ordered(results):
        by_stage.setdefault(r.get("stage") or "other", []).append(r)
    totals = {"tests": 0, "failures": 0, "skipped": 0, "time": 0.0}
    for stage, items in by_stage.items():
        suite = ET.SubElement(root, "testsuite", name="%s.%s" % (suite_name, stage))
        fails = sum(1 for r in items if r.get("verdict") not in ("pass", "skip"))
        skips = sum(1 for r in items if r.get("verdict") == "skip")
        spent = sum(float(r.get("duration") or 0) for r in items)
        suite.set("tests", str(len(items)))
        suite.set("failures", str(fails))
        suite.set("errors", "0")
        suite.set("skipped", str(skips))
        suite.set("time", "%.3f" % spent)
        for key, val in (("tests", len(items)), ("failures", fails), ("skipped", skips), ("time", spent)):
            totals[key] += val
        for r in items:
            case = ET.SubElement(suite, "testcase", name=str(r["id"]), classname="%s.%s" % (suite_name, stage),
                                 time="%.3f" % float(r.get("duration") or 0))
            props = ET.SubElement(case, "properties")
            for key in ("source", "target", "request", "expected", "observed", "attempts", "exit_code"):
                ET.SubElement(props, "property", name=key, value=str(r.get(key)))
            if r.get("verdict") == "skip":
                ET.SubElement(case, "skipped", message=str(r.get("reason") or "not run"))
            elif r.get("verdict") != "pass":
                failure = ET.SubElement(case, "failure", message=str(r.get("observed")),
                                        type=str(r.get("reason") or "failed"))
                failure.text = "expected: %s\nobserved: %s\nrequest: %s\nsource: %s\nattempts: %s" % (
                    r.get("expected"), r.get("observed"), r.get("request"), r.get("source"), r.get("attempts"))
            out = r.get("stdout") or ""
            err = r.get("stderr") or ""
            if out:
                ET.SubElement(case, "system-out").text = out
            if err:
                ET.SubElement(case, "system-err").text = err
    root.set("tests", str(totals["tests"]))
    root.set("failures", str(totals["failures"]))
    root.set("skipped", str(totals["skipped"]))
    root.set("time", "%.3f" % totals["time"])
    return ET.tostring(root, encoding="unicode")


def _cell(value, width):
    text = " ".join(str("-" if value in (None, "") else value).split())
    return text if len(text) <= width else text[:width - 3] + "..."


def render_table(results, width=160):
    """A fixed-width table (failures again at the end, with what was expected)."""
    cols = (("verdict", 7), ("id", 44), ("source", 24), ("tries", 5), ("secs", 6))
    obs_width = max(30, width - sum(w + 1 for _n, w in cols) - 1)
    head = " ".join(n.upper().ljust(w) for n, w in cols) + " OBSERVED"
    lines = [head, "-" * min(width, len(head) + obs_width - 8)]
    for r in ordered(results):
        verdict = {"pass": "PASS", "fail": "FAIL", "skip": "SKIP"}.get(r.get("verdict"), "FAIL")
        observed = r.get("observed") if verdict != "SKIP" else "not run: %s" % r.get("reason")
        row = [verdict, r.get("id"), r.get("source"), r.get("attempts"), "%.2f" % float(r.get("duration") or 0)]
        lines.append(" ".join(_cell(v, w).ljust(w) for v, (_n, w) in zip(row, cols)) + " " + _cell(observed, obs_width))
    s = summarize(results)
    lines.append("")
    lines.append("%d checks: %d passed, %d failed, %d not run" % (s["total"], s["pass"], s["fail"], s["skip"]))
    for r in results:
        if r.get("verdict") not in ("pass", "skip"):
            lines.append("FAILED %s: expected %s; observed %s" % (r["id"], r.get("expected"), r.get("observed")))
    for r in results:
        if r.get("verdict") == "skip":
            lines.append("NOT RUN %s: %s" % (r["id"], r.get("reason")))
    return "\n".join(lines)


def write_report(directory, results, meta=None):
    """Write JSON, JUnit XML, the table and the HTML page into ``directory``;
    returns the paths."""
    if not os.path.isdir(directory):
        os.makedirs(directory)
    paths = {"json": os.path.join(directory, JSON_NAME), "junit": os.path.join(directory, JUNIT_NAME),
             "table": os.path.join(directory, TABLE_NAME), "html": os.path.join(directory, HTML_NAME)}
    document = to_document(results, meta)
    contents = {"json": json.dumps(document, indent=2, sort_keys=False) + "\n",
                "junit": '<?xml version="1.0" encoding="UTF-8"?>\n' + to_junit(results) + "\n",
                "table": render_table(results) + "\n",
                "html": render_html(document)}
    for key, path in paths.items():
        tmp = path + ".tmp"
        with open(tmp, "w") as handle:
            handle.write(contents[key])
        os.rename(tmp, path)
    return paths
