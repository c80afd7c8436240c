#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: kubelab developers
# MIT License

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: kubelab_http_probe
short_description: HTTP GET every externalIP x service port and every node address x nodePort
description:
  - Takes the targets of M(kubelab_verify_targets) and sends one HTTP GET (a new connection each time) to every
    externalIP x TCP service port and every node address x nodePort, from the host the module runs on.
  - A target passes with status 200 and a body matching O(body_pattern).
  - Only transport errors (refused, reset, unreachable) and timeouts are retried, up to O(attempts) times; a wrong
    status or body fails at once.
  - The probes run in parallel, at most O(workers) at a time.
  - Returns one result per target (status, latency, attempts, verdict). Inspect-only (C(changed=false)).
version_added: "0.1.0"
author: kubelab developers
options:
  targets:
    description: The RV(kubelab_verify_targets#module:targets) dict.
    type: dict
    required: true
  body_pattern:
    description: Python regular expression the response body must match.
    type: str
    default: Welcome to nginx!
  path:
    description: URL path requested.
    type: str
    default: /
  timeout:
    description: Seconds per request (connect and read).
    type: float
    default: 3.0
  attempts:
    description: Tries per target when the request times out or fails in transport.
    type: int
    default: 3
  delay:
    description: Seconds between tries.
    type: float
    default: 1.0
  workers:
    description: Requests in flight at the same time.
    type: int
    default: 16
  source:
    description: Name of the place the requests come from, for the report.
    type: str
    default: controller
  fail_on_check_failure:
    description: Fail the task when a check fails. The verify role sets V(false) and lets M(kubelab_verify_report) fail.
    type: bool
    default: true
notes:
  - Supports check mode (GET requests change nothing).
seealso:
  - module: kubelab_verify_targets
  - module: ansible.builtin.uri
"""

EXAMPLES = r"""
- name: GET every external address of the test services
  kubelab_http_probe:
    targets: "{{ targets.targets }}"
    body_pattern: "Welcome to nginx!"
  register: http
"""

RETURN = r"""
results:
  description:
    - One result per target (id, stage, source, target, request, expected, observed, verdict, attempts, duration,
      details.status, details.latency_ms, details.url).
  returned: always
  type: list
  elements: dict
  sample:
    - id: "http:nginx-svc-np:10.20.2.235:31511"
      target: "nginx-svc-np 10.20.2.235:31511 (nodePort)"
      request: "GET http://10.20.2.235:31511/"
      expected: "HTTP 200, body matches 'Welcome to nginx!'"
      observed: "HTTP 200, 615 bytes, pattern found"
      verdict: pass
      attempts: 1
failed_checks:
  description: Ids of the failed checks.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.kubelab_checks import check_http, exit_with_results


def main():
    module = AnsibleModule(
        argument_spec=dict(
            targets=dict(type="dict", required=True),
            body_pattern=dict(type="str", default="Welcome to nginx!"),
            path=dict(type="str", default="/"),
            timeout=dict(type="float", default=3.0),
            attempts=dict(type="int", default=3),
            delay=dict(type="float", default=1.0),
            workers=dict(type="int", default=16),
            source=dict(type="str", default="controller"),
            fail_on_check_failure=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    p = module.params
    try:
        results = check_http(p["targets"], body_pattern=p["body_pattern"], timeout=p["timeout"],
                             attempts=p["attempts"], delay=p["delay"], workers=p["workers"], source=p["source"],
                             path=p["path"])
    except (KeyError, TypeError) as exc:
        module.fail_json(msg="targets is not a kubelab_verify_targets result: missing %s" % exc)
    exit_with_results(module, results, "HTTP checks failed: ",
                      label="request", fail_on_check_failure=p["fail_on_check_failure"])


if __name__ == "__main__":
    main()
