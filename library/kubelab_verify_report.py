#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: kubelab developers
# MIT License

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: kubelab_verify_report
short_description: Collect the verification results into one report (JSON, JUnit XML, table, HTML) and judge the run
description:
  - Takes the results of M(kubelab_http_probe), M(kubelab_spread) and M(kubelab_pod_probe), turns what the node
    tasks gathered (C(crio_config_info) and the crio/kubelet unit states) into node-level results, and adds one
    C(skip) result, with its reason, for every check that was not run.
  - Writes C(verify.json), C(verify-junit.xml), C(verify.txt) (the readable table) and C(verify.html) (one
    self-contained page, CSS inline, no script, every value escaped - the externalIP x port and node x nodePort grid,
    the requests per pod as bars, the in-pod checks with command, output and reason, the node checks, and one line
    for each thing that could not be checked) into O(report_dir) on the host it runs on (the controller) and returns
    the table.
  - A node kubelab could not reach (an C(unreachable) C(crio) result, or C(no_data) on the node entry) fails its
    checks with the observation "not checked" and why, and the HTML page says so in one line.
  - Fails when any check failed (O(fail_on_failure)), naming every failed check with what was expected and observed.
    Checks that were not run are never counted as passed; a report where nothing passed fails too.
  - Writing the report is not a change to the managed systems, so the module reports C(changed=false). In check
    mode the files are not written (RV(written) is false); the table and the verdict are still returned.
version_added: "0.1.0"
author: kubelab developers
options:
  results:
    description: Result dicts of the probe modules (a flat list).
    type: list
    elements: dict
    default: []
  nodes:
    description:
      - One entry per node, C({host, crio, services}), where C(crio) is the registered result of C(crio_config_info)
        and C(services) maps C(crio) and C(kubelet) to their systemd state (C(running), C(stopped), ...).
        C(no_data=true) marks a node that gave no data (unreachable or failed earlier).
    type: list
    elements: dict
    default: []
  required_capability:
    description: Capability that CRI-O's effective default_capabilities must contain on every node.
    type: str
    default: NET_RAW
  not_run:
    description: Checks that were not run, each C({id, stage, reason}).
    type: list
    elements: dict
    default: []
  report_dir:
    description: Directory on the controller for the report files (created when missing).
    type: path
    required: true
  meta:
    description: Free-form facts stored in the JSON report (inventory, versions).
    type: dict
    default: {}
  fail_on_failure:
    description: Fail when a check failed or when no check passed.
    type: bool
    default: true
notes:
  - Supports check mode (nothing is written then).
seealso:
  - module: kubelab_http_probe
  - module: kubelab_spread
  - module: kubelab_pod_probe
"""

EXAMPLES = r"""
- name: Write the report and fail on any failed check
  kubelab_verify_report:
    results: "{{ http.results + spread.results + pod_checks.results }}"
    nodes:
      - host: worker01
        crio: "{{ crio_effective }}"
        services: {crio: running, kubelet: running}
    report_dir: "{{ kubelab_artifacts_dir }}/report"
  register: report
"""

RETURN = r"""
summary:
  description: Counts (pass, fail, skip, total), failed_ids, skipped_ids and ok.
  returned: always
  type: dict
  sample: {"pass": 31, "fail": 0, "skip": 0, "total": 31, "failed_ids": [], "skipped_ids": [], "ok": true}
table:
  description: The readable table, one line per check, then the failed and not-run checks with reasons.
  returned: always
  type: str
table_lines:
  description: RV(table) split into lines (for display).
  returned: always
  type: list
  elements: str
paths:
  description: The files written (json, junit, table, html); empty in check mode.
  returned: always
  type: dict
  sample: {"json": artifacts/report/verify.json, "junit": artifacts/report/verify-junit.xml,
           "table": artifacts/report/verify.txt, "html": artifacts/report/verify.html}
message:
  description: The verdict in one sentence, naming every failed check with what was expected and observed.
  returned: always
  type: str
  sample: "1 of 31 checks failed: dns:nginx-svc (expected ...; observed ...)"
written:
  description: Whether the files were written.
  returned: always
  type: bool
failed_checks:
  description: Ids of the failed checks.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.kubelab_checks import node_checks, skipped
from ansible.module_utils.kubelab_report import render_table, summarize, write_report


def build_results(params):
    results = node_checks(params["nodes"], required_capability=params["required_capability"])
    results += list(params["results"])
    for item in params["not_run"]:
        results.append(skipped(item["id"], item.get("stage", "-"), item.get("reason") or "not run",
                               item.get("target", "")))
    return results


def verdict_message(results, summary):
    """One sentence naming every failed check (expected vs observed)."""
    failed = [r for r in results if r["id"] in summary["failed_ids"]]
    if failed:
        return "%d of %d checks failed: %s" % (len(failed), summary["total"], "; ".join(
            "%s (expected %s; observed %s)" % (r["id"], r.get("expected"), r.get("observed")) for r in failed))
    if not summary["ok"]:
        return "no check passed (%d not run: %s)" % (summary["skip"], ", ".join(summary["skipped_ids"]))
    return "%d checks passed, %d not run" % (summary["pass"], summary["skip"])


def main():
    module = AnsibleModule(
        argument_spec=dict(
            results=dict(type="list", elements="dict", default=[]),
            nodes=dict(type="list", elements="dict", default=[]),
            required_capability=dict(type="str", default="NET_RAW"),
            not_run=dict(type="list", elements="dict", default=[]),
            report_dir=dict(type="path", required=True),
            meta=dict(type="dict", default={}),
            fail_on_failure=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    p = module.params
    try:
        results = build_results(p)
    except KeyError as exc:
        module.fail_json(msg="a nodes/not_run entry lacks the key %s" % exc)
    summary = summarize(results)
    table = render_table(results)
    paths = {}
    if not module.check_mode:
        try:
            paths = write_report(p["report_dir"], results, p["meta"])
        except OSError as exc:
            module.fail_json(msg="cannot write the report to %s: %s" % (p["report_dir"], exc), table=table)
    message = verdict_message(results, summary)
    out = dict(changed=False, summary=summary, table=table, table_lines=table.splitlines(), paths=paths,
               written=bool(paths), failed_checks=summary["failed_ids"], message=message)
    if p["fail_on_failure"] and not summary["ok"]:
        module.fail_json(msg=message, **out)
    module.exit_json(**out)


if __name__ == "__main__":
    main()
