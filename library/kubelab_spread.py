#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: kubelab developers
# MIT License

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: kubelab_spread
short_description: Check that each Service spreads requests over all of its ready pods, from the pods' own logs
description:
  - For every Service of the targets that can be reached from outside (externalIP or nodePort), sends N marked HTTP
    GETs (C(?kubelab-verify=RUN.NAMESPACE.SERVICE.SEQ), a new connection each, round-robin over the Service's
    external addresses), then reads the access log of every expected backend pod through the Kubernetes API
    (C(pods/log)) and counts that Service's markers of this run per pod.
  - The marker is unique to the Service and the run. Its fields are joined with C(.), which no run id, namespace or
    Service name can hold, and only a query value of exactly C(RUN.NAMESPACE.SERVICE.) plus digits counts, so
    requests sent to C(nginx-svc-lb) never count as C(nginx-svc)'s.
  - Fails a Service when a request fails or gets a wrong answer, when an expected ready pod gets less than
    O(min_fair_fraction) of its fair share, when answered requests appear in no backend's log, or when the logs
    hold more of its markers than it sent (or one marker twice).
  - "Binomial argument for the defaults: with k pods each request reaches a given pod with probability 1/k under
    a fair proxy. N is the smallest count with k * P[Binomial(N, 1/k) < ceil(0.4 N/k)] <= 1e-6 / (number of
    Services). For two pods and three Services: N = 65 requests per Service and a minimum of 13 per pod (20%);
    a fair split fails with probability 2.8e-7 per Service (8.4e-7 per run), while a dead pod or one the Service
    does not select gets 0 and always fails. With three pods N = 126, minimum 17."
  - The expected pods are the ready pods of the Deployments the Service reaches (see M(kubelab_verify_targets)).
  - Inspect-only. The requests are ordinary GETs; nothing is created in the cluster (C(changed=false)).
version_added: "0.1.0"
author: kubelab developers
options:
  kubeconfig:
    description: Kubeconfig on the controller, to read the pod logs.
    type: path
    required: true
  context:
    description: Kubeconfig context.
    type: str
  targets:
    description: The RV(kubelab_verify_targets#module:targets) dict.
    type: dict
    required: true
  requests:
    description: Requests per Service. V(0) computes N from O(max_false_failure) (see the description).
    type: int
    default: 0
  min_fair_fraction:
    description: A pod fails below this fraction of its fair share 1/k.
    type: float
    default: 0.4
  max_false_failure:
    description: Probability budget for a fair proxy to fail the whole run, used when O(requests=0).
    type: float
    default: 0.000001
  body_pattern:
    description: Regular expression each response body must match.
    type: str
    default: Welcome to nginx!
  timeout:
    description: Seconds per request.
    type: float
    default: 3.0
  workers:
    description: Requests in flight at the same time.
    type: int
    default: 8
  log_wait:
    description: Seconds to wait for the log lines of answered requests to show up in the pod logs.
    type: float
    default: 15.0
  log_since_seconds:
    description: Read only this many seconds of each pod log.
    type: int
    default: 600
  fail_on_check_failure:
    description: Fail the task when a check fails.
    type: bool
    default: true
notes:
  - Supports check mode.
  - The container logs must include the access log (the official nginx image logs to stdout).
seealso:
  - module: kubelab_verify_targets
  - module: kubelab_http_probe
"""

EXAMPLES = r"""
- name: Requests must reach both nginx pods through every Service
  kubelab_spread:
    kubeconfig: "{{ kubelab_admin_kubeconfig }}"
    targets: "{{ targets.targets }}"
  register: spread
"""

RETURN = r"""
results:
  description:
    - One result per Service; details holds requests (sent), answered, counted, threshold, counts and shares per
      pod, backends, failed_requests, false_failure_probability, run_id and marker_prefix.
  returned: always
  type: list
  elements: dict
  sample:
    - id: "spread:nginx-svc"
      observed: "nginx-6c8cf466cd-mpfz4 31 (48%), nginx-6c8cf466cd-xgbd7 34 (52%)"
      verdict: pass
failed_checks:
  description: Ids of the failed checks.
  returned: always
  type: list
  elements: str
"""

import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible.module_utils.kubelab_checks import KubeLogSource, check_spread, exit_with_results, kube_api_client

try:
    from kubernetes import client as k8s_client
    HAS_KUBERNETES = True
    KUBERNETES_IMPORT_ERROR = None
except ImportError:
    HAS_KUBERNETES = False
    KUBERNETES_IMPORT_ERROR = traceback.format_exc()


def main():
    module = AnsibleModule(
        argument_spec=dict(
            kubeconfig=dict(type="path", required=True),
            context=dict(type="str"),
            targets=dict(type="dict", required=True),
            requests=dict(type="int", default=0),
            min_fair_fraction=dict(type="float", default=0.4),
            max_false_failure=dict(type="float", default=0.000001),
            body_pattern=dict(type="str", default="Welcome to nginx!"),
            timeout=dict(type="float", default=3.0),
            workers=dict(type="int", default=8),
            log_wait=dict(type="float", default=15.0),
            log_since_seconds=dict(type="int", default=600),
            fail_on_check_failure=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    if not HAS_KUBERNETES:
        module.fail_json(msg=missing_required_lib("kubernetes"), exception=KUBERNETES_IMPORT_ERROR)
    p = module.params
    if not 0 < p["min_fair_fraction"] <= 1:
        module.fail_json(msg="min_fair_fraction must be in (0, 1], got %s" % p["min_fair_fraction"])
    try:
        core = k8s_client.CoreV1Api(kube_api_client(p["kubeconfig"], p["context"]))
        logs = KubeLogSource(core, since_seconds=p["log_since_seconds"])
        results = check_spread(p["targets"], logs, requests=p["requests"], min_fair_fraction=p["min_fair_fraction"],
                               max_false_failure=p["max_false_failure"], body_pattern=p["body_pattern"],
                               timeout=p["timeout"], workers=p["workers"], log_wait=p["log_wait"])
    except (KeyError, TypeError) as exc:
        module.fail_json(msg="targets is not a kubelab_verify_targets result: missing %s" % exc)
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    exit_with_results(module, results, "load spreading failed: ",
                      label="target", fail_on_check_failure=p["fail_on_check_failure"])


if __name__ == "__main__":
    main()
