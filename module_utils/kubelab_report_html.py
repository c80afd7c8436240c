# -*- coding: utf-8 -*-
# Copyright: kubelab developers
# MIT License
"""The verification report as one self-contained HTML page.

Input is the JSON document of ``kubelab_report.to_document`` (``summary``,
``meta``, ``results``). Output is one HTML file with its CSS inline, no
script and no external asset (no font, image or stylesheet is fetched):

* the verdict, with what the exit code of ``kubelab verify`` says;
* one line per thing that could not be checked, saying what and why (a lab
  without a data plane, workloads that never got ready, an unreachable node);
* the externalIP x port grid and the node x nodePort grid, one cell per
  check: pass/fail, latency, the observed answer on hover;
* each Service's requests per pod as bars, with the pass threshold;
* the in-pod checks with their command, output and reason;
* the node checks.

Every value from the report goes through ``html.escape``. Pure Python 3.8,
no Ansible import: the kubelab CLI loads this file too.
"""

from __future__ import absolute_import, division, print_function

import html
import json
import re

__metaclass__ = type

HTML_NAME = "verify.html"
NOT_CHECKED_REASONS = ("unreachable", "no_data")
_TARGET = re.compile(r"^(?P<service>\S+) (?P<host>\[[^\]]+\]|[^\s:]+):(?P<port>\d+) \((?P<kind>[^)]+)\)$")

CSS = """
body{font-family:sans-serif;margin:1.5em;color:#1b1b1b;background:#fff}
h1{font-size:1.5em;margin:0 0 .3em}
h2{font-size:1.2em;margin:1.6em 0 .5em;border-bottom:1px solid #ccc}
h3{font-size:1em;margin:1em 0 .3em}
.verdict{display:inline-block;padding:.2em .7em;font-weight:bold;color:#fff}
.verdict.pass{background:#1e7b34}.verdict.fail{background:#b3261e}
.meta,.note{color:#444}
table{border-collapse:collapse;margin:.3em 0 1em}
th,td{border:1px solid #bbb;padding:.3em .5em;text-align:left;vertical-align:top}
td.observed,td.expected,td.command{overflow-wrap:anywhere;min-width:12em}
th{background:#eee}
td.cell{min-width:7em;text-align:center;font-weight:bold}
td.pass{background:#b7e4c0;color:#0b3d17}
td.fail{background:#f4b4ae;color:#5c0b05}
td.skip{background:#e0e0e0;color:#333}
td.none{background:#fafafa;color:#999;font-weight:normal}
.cell small{display:block;font-weight:normal}
.notchecked{background:#fff4d6;border-left:.4em solid #c78a00;padding:.3em .6em;margin:.3em 0}
.service{margin:.8em 0 1.2em}
.barrow{display:flex;align-items:center;margin:.2em 0}
.barrow .pod{width:22em;font-family:monospace;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.bar{position:relative;width:30em;height:1.3em;background:#e8e8e8;border:1px solid #999}
.bar .fill{position:absolute;left:0;top:0;bottom:0;background:#1f5fbf}
.bar .fill.low{background:#b3261e}
.bar .threshold{position:absolute;top:-2px;bottom:-2px;width:2px;background:#000}
.barrow .count{margin-left:.6em;font-family:monospace}
pre{margin:0;white-space:pre-wrap;overflow-wrap:anywhere;font-size:.85em;max-width:40em}
td.output{min-width:26em}
details summary{cursor:pointer;color:#444}
.reason{color:#8c1d18;font-weight:bold}
code{font-size:.9em}
"""


def _e(value):
    """Escaped text of any value (None and "" as "-")."""
    if value is None or value == "":
        return "-"
    if isinstance(value, (dict, list)):
        value = json.dumps(value, sort_keys=True)
    return html.escape(str(value), quote=True)


def _verdict(result):
    value = str(result.get("verdict", "")).lower()
    return value if value in ("pass", "fail", "skip") else "fail"


def _details(result):
    details = result.get("details")
    return details if isinstance(details, dict) else {}


def _num(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def http_cell(result):
    """``(service, host, port, kind, node)`` of an HTTP check, from its details
    (or, for older reports, its target text ``SVC HOST:PORT (kind)``)."""
    d = _details(result)
    if d.get("service") and d.get("host") and d.get("port") is not None:
        return d["service"], str(d["host"]), str(d["port"]), d.get("kind") or "-", d.get("node")
    m = _TARGET.match(str(result.get("target") or ""))
    if not m:
        return None
    return m.group("service"), m.group("host").strip("[]"), m.group("port"), m.group("kind"), None


def _not_checked(results):
    """``[(what, why)]``: one entry per thing that could not be checked."""
    lines = []
    seen_hosts = set()
    for r in results:
        if _verdict(r) == "skip":
            lines.append((r.get("target") or r.get("id"), r.get("reason") or "not run"))
        elif r.get("stage") == "node" and r.get("reason") in NOT_CHECKED_REASONS:
            host = r.get("source") or r.get("id")
            if host not in seen_hosts:
                seen_hosts.add(host)
                why = str(r.get("observed") or "")
                lines.append(("node %s" % host, why[len("not checked: "):] if why.startswith("not checked: ") else why))
    return lines


def _not_checked_html(items):
    return "".join('<p class="notchecked">Not checked: <b>%s</b> &mdash; %s</p>\n' % (_e(what), _e(why))
                   for what, why in items)


def _see_above(items):
    """In a section: point to the one line that says what and why."""
    return '<p class="note">Not checked: %s (see above).</p>\n' % _e("; ".join(str(w) for w, _y in items)) if items else ""


def _grid(results, kind):
    """One table per source: rows = address (or node), columns = service:port."""
    out = []
    by_source = {}
    for r in results:
        cell = http_cell(r)
        if cell is None or cell[3] != kind:
            continue
        by_source.setdefault(r.get("source") or "-", []).append((cell, r))
    for source in sorted(by_source):
        items = by_source[source]
        columns = []
        rows = []
        cells = {}
        for (service, host, port, _kind, node), r in items:
            col = "%s:%s" % (service, port)
            row = "%s (%s)" % (node, host) if node else host
            if col not in columns:
                columns.append(col)
            if row not in rows:
                rows.append(row)
            cells[(row, col)] = r
        grid_id = "grid-%s-%s" % (kind, re.sub(r"[^A-Za-z0-9_-]", "_", source))
        head = "".join("<th>%s</th>" % _e(col) for col in columns)
        body = []
        for row in rows:
            tds = []
            for col in columns:
                r = cells.get((row, col))
                if r is None:
                    tds.append('<td class="cell none">not a target</td>')
                    continue
                verdict = _verdict(r)
                latency = _num(_details(r).get("latency_ms"))
                small = "%.1f ms" % latency if latency is not None else ""
                if verdict == "fail":
                    small = "%s%s" % (_e(r.get("reason") or "failed"), (", " + small) if small else "")
                else:
                    small = _e(small)
                tds.append('<td class="cell %s" data-check="%s" title="%s">%s<small>%s</small></td>' % (
                    verdict, _e(r.get("id")), _e("%s: %s" % (r.get("request"), r.get("observed"))),
                    verdict.upper(), small))
            body.append("<tr><th>%s</th>%s</tr>" % (_e(row), "".join(tds)))
        label = "externalIP" if kind == "externalIP" else "node (address)"
        out.append('<h3>From %s</h3>\n<table class="grid" id="%s"><tr><th>%s \\ Service:port</th>%s</tr>\n%s\n'
                   '</table>\n' % (_e(source), _e(grid_id), _e(label), head, "\n".join(body)))
    return "".join(out)


def _bars(result):
    d = _details(result)
    counts = d.get("counts") if isinstance(d.get("counts"), dict) else {}
    sent = _num(d.get("requests")) or 0
    threshold = _num(d.get("threshold"))
    backends = d.get("backends") if isinstance(d.get("backends"), list) else sorted(counts)
    verdict = _verdict(result)
    parts = ['<div class="service" data-check="%s"><h3>%s <span class="verdict %s">%s</span></h3>' % (
        _e(result.get("id")), _e(result.get("target")), verdict if verdict != "skip" else "pass", verdict.upper())]
    if verdict == "skip":
        parts.append('<p class="notchecked">Not checked: %s</p></div>' % _e(result.get("reason")))
        return "".join(parts)
    parts.append('<p class="note">%s sent; counted %s in the pods\' logs; a pod needs at least %s (black line). '
                 '%s</p>' % (_e(d.get("requests")), _e(d.get("counted")), _e(d.get("threshold")),
                             _e(result.get("expected"))))
    for pod in list(backends) + sorted(set(counts) - set(backends)):
        count = _num(counts.get(pod)) or 0
        share = min(100.0, 100.0 * count / sent) if sent else 0.0
        low = threshold is not None and pod in backends and count < threshold
        marker = ""
        if threshold is not None and sent:
            marker = '<span class="threshold" style="left:%.2f%%"></span>' % min(100.0, 100.0 * threshold / sent)
        parts.append('<div class="barrow"><span class="pod">%s%s</span><span class="bar">'
                     '<span class="fill%s" data-count="%s" style="width:%.2f%%"></span>%s</span>'
                     '<span class="count">%s (%.0f%%)</span></div>' % (
                         _e(pod), "" if pod in backends else " (not expected)", " low" if low else "",
                         _e(int(count)), share, marker, _e(int(count)), share))
    if verdict == "fail":
        parts.append('<p class="reason">%s</p>' % _e(result.get("reason") or result.get("observed")))
    parts.append("</div>")
    return "".join(parts)


def _check_table(results, columns, table_id):
    head = "".join("<th>%s</th>" % _e(title) for title, _fn in columns)
    rows = []
    for r in results:
        verdict = _verdict(r)
        tds = "".join('<td class="%s">%s</td>' % (_e(title), fn(r)) for title, fn in columns)
        rows.append('<tr class="%s" data-check="%s"><td class="cell %s">%s</td>%s</tr>' % (
            verdict, _e(r.get("id")), verdict, verdict.upper(), tds))
    return '<table id="%s"><tr><th>verdict</th>%s</tr>\n%s\n</table>\n' % (_e(table_id), head, "\n".join(rows))


def _output(r):
    """stdout and stderr (folded for a passed check) and the exit code."""
    parts = []
    for key in ("stdout", "stderr"):
        if r.get(key):
            text = str(r[key])
            lines = text.count("\n") + 1
            parts.append('<details%s><summary>%s (%d line%s)</summary><pre>%s</pre></details>' % (
                "" if _verdict(r) == "pass" else " open", key, lines, "" if lines == 1 else "s", html.escape(text)))
    if r.get("exit_code") is not None:
        parts.append("exit code %s" % _e(r.get("exit_code")))
    return "".join(parts) or "-"


def _reason(r):
    if _verdict(r) == "pass":
        return "-"
    return '<span class="reason">%s</span>' % _e(r.get("reason") or "failed")


POD_COLUMNS = (
    ("check", lambda r: _e(r.get("id"))),
    ("command", lambda r: "<code>%s</code>" % _e(r.get("request"))),
    ("expected", lambda r: _e(r.get("expected"))),
    ("observed", lambda r: _e(r.get("observed"))),
    ("reason", _reason),
    ("tries", lambda r: _e(r.get("attempts"))),
    ("output", _output),
)
NODE_COLUMNS = (
    ("node", lambda r: _e(r.get("source"))),
    ("check", lambda r: _e(r.get("id"))),
    ("what", lambda r: _e(r.get("target"))),
    ("expected", lambda r: _e(r.get("expected"))),
    ("observed", lambda r: _e(r.get("observed"))),
    ("reason", _reason),
)
OTHER_COLUMNS = (
    ("check", lambda r: _e(r.get("id"))),
    ("stage", lambda r: _e(r.get("stage"))),
    ("request", lambda r: _e(r.get("request"))),
    ("expected", lambda r: _e(r.get("expected"))),
    ("observed", lambda r: _e(r.get("observed"))),
    ("reason", _reason),
)


def render_html(document):
    """The HTML page (a str) for a report document (see the module docstring)."""
    results = [r for r in (document.get("results") or []) if isinstance(r, dict)]
    meta = document.get("meta") if isinstance(document.get("meta"), dict) else {}
    counts = {"pass": 0, "fail": 0, "skip": 0}
    for r in results:
        counts[_verdict(r)] += 1
    ok = counts["fail"] == 0 and counts["pass"] > 0
    stage = lambda name: [r for r in results if r.get("stage") == name and _verdict(r) != "skip"]  # noqa: E731
    skips = lambda name: [r for r in results if r.get("stage") == name and _verdict(r) == "skip"]  # noqa: E731
    out = ['<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           "<title>kubelab verify: %s</title>" % ("passed" if ok else "FAILED"),
           "<style>%s</style></head><body>" % CSS]
    out.append('<h1>kubelab verify <span class="verdict %s" id="verdict">%s</span></h1>' % (
        "pass" if ok else "fail", "PASSED" if ok else "FAILED"))
    out.append('<p class="meta" id="summary">%d checks: %d passed, %d failed, %d not run. Generated %s. '
               'Namespace %s, Kubernetes %s, data plane %s, nodes %s.</p>' % (
                   len(results), counts["pass"], counts["fail"], counts["skip"], _e(document.get("generated")),
                   _e(meta.get("namespace")), _e(meta.get("kubernetes_version")), _e(meta.get("data_plane")),
                   _e(", ".join(str(n) for n in meta.get("nodes") or []))))
    if ok:
        exit_text = "Nothing failed: kubelab verify exits 0."
    elif counts["pass"] == 0 and counts["fail"] == 0:
        exit_text = "No check passed: kubelab verify exits 3."
    else:
        exit_text = "%d check(s) failed: kubelab verify exits 3." % counts["fail"]
    out.append('<p class="meta" id="exit">%s Checks not run are never counted as passed.</p>' % _e(exit_text))
    not_checked = _not_checked(results)
    if not_checked:
        out.append('<h2 id="not-checked">Could not be checked</h2>')
        out.append(_not_checked_html(not_checked))
    readiness = stage("readiness")
    if readiness:
        out.append('<h2 id="readiness">Readiness</h2>')
        out.append(_check_table(readiness, OTHER_COLUMNS, "readiness-table"))

    http = stage("external")
    out.append('<h2 id="external">HTTP from outside: externalIP x port</h2>')
    grid = _grid(http, "externalIP")
    out.append(grid or _see_above([(t.get("target") or t.get("id"), t.get("reason"))
                                   for t in skips("external")]) or '<p class="note">No externalIP target.</p>')
    out.append('<h2 id="nodeports">HTTP from outside: node x nodePort</h2>')
    grid = _grid(http, "nodePort")
    out.append(grid or _see_above([(t.get("target") or t.get("id"), t.get("reason"))
                                   for t in skips("external")]) or '<p class="note">No nodePort target.</p>')
    other_http = [r for r in http if http_cell(r) is None]

    out.append('<h2 id="spread">Requests per pod, per Service</h2>')
    spread = [r for r in results if r.get("stage") == "spread"]
    groups = [(r.get("target"), r.get("reason")) for r in spread if r.get("id") == "spread:*"]
    out.append("".join(_bars(r) for r in spread if r.get("id") != "spread:*")
               or _see_above(groups) or '<p class="note">No Service was checked.</p>')

    out.append('<h2 id="pod">From inside the probe pod</h2>')
    pod = stage("pod")
    out.append(_check_table(pod, POD_COLUMNS, "pod-table") if pod else "")
    out.append(_see_above([(r.get("target") or r.get("id"), r.get("reason")) for r in skips("pod")]))

    out.append('<h2 id="node">Nodes</h2>')
    nodes = [r for r in stage("node") if r.get("reason") not in NOT_CHECKED_REASONS]
    out.append(_check_table(nodes, NODE_COLUMNS, "node-table") if nodes else "")
    out.append(_see_above([(w, y) for w, y in not_checked if str(w).startswith("node ")]))

    known = ("readiness", "external", "spread", "pod", "node")
    other = other_http + [r for r in results if r.get("stage") not in known and _verdict(r) != "skip"]
    if other:
        out.append('<h2 id="other">Other checks</h2>')
        out.append(_check_table(other, OTHER_COLUMNS, "other-table"))
    out.append("</body></html>\n")
    return "\n".join(out)
