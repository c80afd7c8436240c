#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: kubelab developers
# MIT License

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: kubelab_verify_cluster
short_description: Every API-side check of the verify stage in one process - targets, HTTP, load spreading, in-pod checks
description:
  - Does in one module run what M(kubelab_verify_targets), M(kubelab_http_probe) (from the controller),
    M(kubelab_spread) and M(kubelab_pod_probe) do one after the other, with the same code, results and messages. The
    C(kubernetes) Python client, whose import takes seconds on a loaded machine, is imported once instead of once
    per module.
  - First waits (up to O(wait_timeout) seconds) until every Deployment of O(namespace) is ready, every Service has a
    ready endpoint, the probe pod (O(probe_selector)) is ready and the cluster DNS Service exists, and builds the
    targets from the cluster's objects. When something is not ready it fails with the message of
    M(kubelab_verify_targets) (naming what is not ready) and runs no check; RV(ready) is false then.
  - Then runs the checks of O(checks), in this order - C(http) GET every externalIP x port and node x nodePort from
    the host the module runs on; C(spread) marked GETs per Service counted in the pods' access logs (C(pods/log));
    C(pod) ping, TCP connect and nslookup from inside the probe pod (C(pods/exec)). See those modules for what
    passes and what is retried.
  - When there is no probe pod (O(probe_selector) empty) the in-pod checks are reported as not run, with the reason.
  - A group of checks that raises (an API error, spread settings no request count up to 2000 can meet) is
    one failed result (C(external:*), C(spread:*) or C(pod:*)) naming the group, the namespace and the
    error; the other groups still run and RV(results) is always returned once the workloads are ready.
  - Inspect-only (C(changed=false)).
version_added: "0.1.0"
author: kubelab developers
options:
  kubeconfig:
    description: Kubeconfig file on the controller (the admin kubeconfig).
    type: path
    required: true
  context:
    description: Kubeconfig context. The current context when unset.
    type: str
  namespace:
    description: Namespace of the test workloads.
    type: str
    default: test
  dns_service:
    description: Name of the cluster DNS Service.
    type: str
    default: kube-dns
  dns_namespace:
    description: Namespace of the cluster DNS Service.
    type: str
    default: kube-system
  cluster_domain:
    description: Cluster DNS domain (for the fully qualified service names).
    type: str
    default: cluster.local
  probe_selector:
    description: Labels of the pod the in-cluster checks run in (busybox). Empty means no probe pod.
    type: dict
    default: {app: busybox}
  wait_timeout:
    description: Seconds to wait for readiness. V(0) checks once.
    type: int
    default: 300
  poll_interval:
    description: Seconds between readiness polls.
    type: float
    default: 2.0
  checks:
    description: The checks to run after discovery, in the order C(http), C(spread), C(pod).
    type: list
    elements: str
    choices: [http, spread, pod]
    default: [http, spread, pod]
  body_pattern:
    description: Python regular expression every response body must match (HTTP and spread checks).
    type: str
    default: Welcome to nginx!
  http_timeout:
    description: Seconds per HTTP request (connect and read), HTTP and spread checks.
    type: float
    default: 3.0
  http_workers:
    description: HTTP requests in flight at the same time (HTTP checks).
    type: int
    default: 16
  attempts:
    description: Tries per HTTP or in-pod check when it times out or fails in transport.
    type: int
    default: 3
  delay:
    description: Seconds between tries.
    type: float
    default: 1.0
  spread_requests:
    description: Requests per Service. V(0) computes N from O(spread_max_false_failure) (see M(kubelab_spread)).
    type: int
    default: 0
  spread_min_fair_fraction:
    description: A pod fails below this fraction of its fair share 1/k.
    type: float
    default: 0.4
  spread_max_false_failure:
    description: Probability budget for a fair proxy to fail the whole run, used when O(spread_requests=0).
    type: float
    default: 0.000001
  spread_workers:
    description: Spread requests in flight at the same time.
    type: int
    default: 8
  spread_log_wait:
    description: Seconds to wait for the log lines of answered requests to show up in the pod logs.
    type: float
    default: 15.0
  spread_log_since_seconds:
    description: Read only this many seconds of each pod log.
    type: int
    default: 600
  node_crio_capabilities:
    description: CRI-O effective default capabilities per node, to explain a permission denied ping.
    type: dict
    default: {}
  pod_timeout:
    description: Seconds for one TCP connect from the probe pod (busybox C(timeout)).
    type: int
    default: 5
  pod_workers:
    description: Commands running in the probe pod at the same time.
    type: int
    default: 8
notes:
  - Supports check mode (everything it does only reads).
  - Needs the C(kubernetes) Python client on the controller.
  - The verify role runs this module; the single-purpose modules stay for use on their own.
seealso:
  - module: kubelab_verify_targets
  - module: kubelab_http_probe
  - module: kubelab_spread
  - module: kubelab_pod_probe
  - module: kubelab_verify_report
"""

EXAMPLES = r"""
- name: Targets, HTTP, spread and in-pod checks in one module run
  kubelab_verify_cluster:
    kubeconfig: "{{ kubelab_admin_kubeconfig }}"
    namespace: test
    node_crio_capabilities:
      worker01: [CHOWN, DAC_OVERRIDE, FSETID, FOWNER, SETGID, SETUID, SETPCAP, NET_BIND_SERVICE, KILL, NET_RAW]
  register: cluster
  failed_when: false

- name: Fail when the workloads never became ready
  ansible.builtin.fail:
    msg: "{{ cluster.msg }}"
  when: not cluster.ready
"""

RETURN = r"""
ready:
  description: Whether the workloads became ready (false when the module failed on readiness or on the API).
  returned: always
  type: bool
targets:
  description: What was verified (see RV(kubelab_verify_targets#module:targets)).
  returned: when the API could be read
  type: dict
waited:
  description: Seconds spent waiting for readiness.
  returned: when the API could be read
  type: float
waiting:
  description: What was not ready.
  returned: when not ready
  type: list
  elements: str
results:
  description: The result of every check, HTTP then spread then in-pod, in the format of the single-purpose modules.
  returned: when ready
  type: list
  elements: dict
failed_checks:
  description: Ids of the failed checks.
  returned: success
  type: list
  elements: str
timings:
  description: Seconds spent in each part (targets, http, spread, pod).
  returned: success
  type: dict
  sample: {"targets": 0.2, "http": 0.1, "spread": 1.4, "pod": 2.5}
"""

import time
import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible.module_utils.kubelab_checks import (
    KubeExecExecutor, KubeLogSource, PodProbe, check_http, check_spread, discover_targets, kube_api_client,
    FAILED, make_result, not_ready_message, skipped,
)

try:
    from kubernetes import client as k8s_client
    HAS_KUBERNETES = True
    KUBERNETES_IMPORT_ERROR = None
except ImportError:
    HAS_KUBERNETES = False
    KUBERNETES_IMPORT_ERROR = traceback.format_exc()

CHECKS = ("http", "spread", "pod")


def check_error(group, namespace, exc):
    """The failed result that stands for the ``group`` checks when they raised ``exc``
    (id and stage as in the report's list of checks not run: ``external:*``, ``spread:*``, ``pod:*``)."""
    stage = "external" if group == "http" else group
    return make_result(
        "%s:*" % stage, stage, "controller", "namespace %s" % namespace, "the %s checks" % group,
        "the %s checks run to a verdict" % group,
        "the %s checks of namespace %s could not run: %s: %s" % (group, namespace, type(exc).__name__, exc),
        FAILED, reason="error", details={"exception": type(exc).__name__})


def run_checks(p, targets, api_client, core_api=None, executor_factory=None, clock=time.monotonic):
    """The checks of ``p["checks"]`` against ``targets``; returns (results, timings).

    Never raises: a group of checks (http, spread, pod) that raises becomes
    one failed result ``<group>:*`` naming the group, the namespace and the
    error, and the other groups still run.
    """
    executor_factory = executor_factory or KubeExecExecutor
    results, timings = [], {}
    namespace = targets.get("namespace") or p.get("namespace")
    core = {}

    def core_v1():
        if "api" not in core:
            core["api"] = core_api if core_api is not None else k8s_client.CoreV1Api(api_client)
        return core["api"]

    def http():
        return check_http(targets, body_pattern=p["body_pattern"], timeout=p["http_timeout"],
                          attempts=p["attempts"], delay=p["delay"], workers=p["http_workers"])

    def spread():
        logs = KubeLogSource(core_v1(), since_seconds=p["spread_log_since_seconds"])
        return check_spread(targets, logs, requests=p["spread_requests"],
                            min_fair_fraction=p["spread_min_fair_fraction"],
                            max_false_failure=p["spread_max_false_failure"], body_pattern=p["body_pattern"],
                            timeout=p["http_timeout"], workers=p["spread_workers"], log_wait=p["spread_log_wait"])

    def pod():
        probe = targets.get("probe_pod")
        if not probe:
            return [skipped("pod:*", "pod", "no probe pod: probe_selector is empty, so no pod was looked for",
                            "ping / TCP / DNS from the probe pod")]
        executor = executor_factory(core_v1(), probe["namespace"], probe["name"], probe.get("container"))
        return PodProbe(executor, targets, attempts=p["attempts"], delay=p["delay"], timeout=p["pod_timeout"],
                        workers=p["pod_workers"], node_crio_capabilities=p["node_crio_capabilities"]).run()

    for group, run in (("http", http), ("spread", spread), ("pod", pod)):
        if group not in p["checks"]:
            continue
        mark = clock()
        try:
            results += run()
        except Exception as exc:  # any error of a group is its failed result, never a lost report
            results.append(check_error(group, namespace, exc))
        timings[group] = round(clock() - mark, 3)
    return results, timings


def main():
    module = AnsibleModule(
        argument_spec=dict(
            kubeconfig=dict(type="path", required=True),
            context=dict(type="str"),
            namespace=dict(type="str", default="test"),
            dns_service=dict(type="str", default="kube-dns"),
            dns_namespace=dict(type="str", default="kube-system"),
            cluster_domain=dict(type="str", default="cluster.local"),
            probe_selector=dict(type="dict", default={"app": "busybox"}),
            wait_timeout=dict(type="int", default=300),
            poll_interval=dict(type="float", default=2.0),
            checks=dict(type="list", elements="str", choices=list(CHECKS), default=list(CHECKS)),
            body_pattern=dict(type="str", default="Welcome to nginx!"),
            http_timeout=dict(type="float", default=3.0),
            http_workers=dict(type="int", default=16),
            attempts=dict(type="int", default=3),
            delay=dict(type="float", default=1.0),
            spread_requests=dict(type="int", default=0),
            spread_min_fair_fraction=dict(type="float", default=0.4),
            spread_max_false_failure=dict(type="float", default=0.000001),
            spread_workers=dict(type="int", default=8),
            spread_log_wait=dict(type="float", default=15.0),
            spread_log_since_seconds=dict(type="int", default=600),
            node_crio_capabilities=dict(type="dict", default={}),
            pod_timeout=dict(type="int", default=5),
            pod_workers=dict(type="int", default=8),
        ),
        supports_check_mode=True,
    )
    if not HAS_KUBERNETES:
        module.fail_json(msg=missing_required_lib("kubernetes"), exception=KUBERNETES_IMPORT_ERROR, ready=False)
    p = module.params
    if not 0 < p["spread_min_fair_fraction"] <= 1:
        module.fail_json(msg="spread_min_fair_fraction must be in (0, 1], got %s" % p["spread_min_fair_fraction"],
                         ready=False)
    start = time.monotonic()
    try:
        api = kube_api_client(p["kubeconfig"], p["context"])
        targets, waited, waiting = discover_targets(
            api, p["namespace"], p["dns_service"], p["dns_namespace"], p["cluster_domain"], p["probe_selector"],
            p["wait_timeout"], p["poll_interval"])
    except Exception as exc:  # API unreachable, bad kubeconfig, RBAC
        module.fail_json(msg="cannot read the cluster objects of namespace %s with %s: %s" % (
            p["namespace"], p["kubeconfig"], exc), ready=False)
    if waiting:
        module.fail_json(
            msg=not_ready_message(p["wait_timeout"], p["namespace"], waiting, p["probe_selector"],
                                  p["dns_namespace"], p["dns_service"]),
            waiting=waiting, targets=targets, waited=round(waited, 3), ready=False, changed=False)
    timings = {"targets": round(time.monotonic() - start, 3)}
    results, more = run_checks(p, targets, api)
    timings.update(more)
    failed = [r["id"] for r in results if r["verdict"] == "fail"]
    module.exit_json(changed=False, ready=True, targets=targets, waited=round(waited, 3), results=results,
                     failed_checks=failed, timings=timings)


if __name__ == "__main__":
    main()
