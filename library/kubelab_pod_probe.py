#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: kubelab developers
# MIT License

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: kubelab_pod_probe
short_description: Ping, TCP-connect and nslookup from inside the probe (busybox) pod through the Kubernetes API
description:
  - Runs busybox commands in the probe pod of M(kubelab_verify_targets) through C(pods/exec) of the Kubernetes API,
    reading stdout, stderr and the exit code separately, and judges them with kubelab's parsers.
  - C(ping -c 1 -W 2 IP) to every pod IP of the namespace (not the probe pod itself). When ping fails with
    C(permission denied) (no raw socket, CAP_NET_RAW missing) the result says so, reads the NET_RAW bit (13) of
    CapEff in the pod's C(/proc/1/status) and names the CRI-O effective default_capabilities of the pod's node
    (O(node_crio_capabilities)). A ping without reply is a network problem (timeout), retried.
  - Ping to a ClusterIP is never a check (a Service is a forwarding rule, not a host).
  - C(timeout N telnet NAME PORT </dev/null) to every TCP port of every Service by its short name, and to the
    cluster DNS Service as C(NAME.NAMESPACE:53). Connected passes; refused, bad address and unreachable fail at
    once; a timeout is retried.
  - "C(nslookup NAME) for every Service's short name and its FQDN. Passes when the answer comes from the cluster DNS
    Service address with the canonical name C(SVC.NS.svc.DOMAIN) and the Service's ClusterIP. Both busybox output
    formats are understood (1.28 C(Address 1: IP NAME); 1.3x C(Name:)/C(Address:), where NXDOMAIN lines for other
    search domains and an exit code 1 next to the right answer are normal). NXDOMAIN is a hard failure; a timeout is
    retried."
  - The commands only read; nothing is left in the pod (C(changed=false)).
version_added: "0.1.0"
author: kubelab developers
options:
  kubeconfig:
    description: Kubeconfig on the controller.
    type: path
    required: true
  context:
    description: Kubeconfig context.
    type: str
  targets:
    description: The RV(kubelab_verify_targets#module:targets) dict (needs RV(kubelab_verify_targets#module:targets.probe_pod)).
    type: dict
    required: true
  node_crio_capabilities:
    description:
      - CRI-O effective default capabilities per node name (or inventory host name), as C(crio_config_info) reports
        them; used to explain a permission denied ping.
    type: dict
    default: {}
  attempts:
    description: Tries per check for timeouts and transport errors.
    type: int
    default: 3
  delay:
    description: Seconds between tries.
    type: float
    default: 1.0
  timeout:
    description: Seconds for one TCP connect (busybox C(timeout)); the exec as a whole gets more.
    type: int
    default: 5
  workers:
    description: Commands running in the pod at the same time.
    type: int
    default: 8
  fail_on_check_failure:
    description: Fail the task when a check fails.
    type: bool
    default: true
notes:
  - Supports check mode (the commands are read-only).
  - The probe pod's image must provide busybox's C(sh), C(ping), C(telnet), C(timeout), C(nslookup) and C(cat).
seealso:
  - module: kubelab_verify_targets
  - module: crio_config_info
"""

EXAMPLES = r"""
- name: Checks from inside the busybox pod
  kubelab_pod_probe:
    kubeconfig: "{{ kubelab_admin_kubeconfig }}"
    targets: "{{ targets.targets }}"
    node_crio_capabilities:
      worker01: [CHOWN, DAC_OVERRIDE, FSETID, FOWNER, SETGID, SETUID, SETPCAP, NET_BIND_SERVICE, KILL, NET_RAW]
  register: pod_checks
"""

RETURN = r"""
results:
  description: One result per check (ids C(ping:POD), C(tcp:NAME:PORT), C(dns:NAME)) with stdout, stderr, exit_code.
  returned: always
  type: list
  elements: dict
  sample:
    - id: "dns:nginx-svc"
      request: "nslookup nginx-svc"
      expected: "answered by 10.96.0.10: nginx-svc.test.svc.cluster.local -> 10.105.132.127"
      observed: "server 10.96.0.10; nginx-svc.test.svc.cluster.local -> 10.105.132.127"
      exit_code: 1
      verdict: pass
failed_checks:
  description: Ids of the failed checks.
  returned: always
  type: list
  elements: str
"""

import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible.module_utils.kubelab_checks import KubeExecExecutor, PodProbe, exit_with_results, kube_api_client

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
            node_crio_capabilities=dict(type="dict", default={}),
            attempts=dict(type="int", default=3),
            delay=dict(type="float", default=1.0),
            timeout=dict(type="int", default=5),
            workers=dict(type="int", default=8),
            fail_on_check_failure=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    if not HAS_KUBERNETES:
        module.fail_json(msg=missing_required_lib("kubernetes"), exception=KUBERNETES_IMPORT_ERROR)
    p = module.params
    probe = (p["targets"] or {}).get("probe_pod")
    if not probe:
        module.fail_json(msg="targets has no probe_pod: expected a ready probe pod found by kubelab_verify_targets "
                             "(probe_selector), observed none")
    try:
        core = k8s_client.CoreV1Api(kube_api_client(p["kubeconfig"], p["context"]))
        executor = KubeExecExecutor(core, probe["namespace"], probe["name"], probe.get("container"))
        results = PodProbe(executor, p["targets"], attempts=p["attempts"], delay=p["delay"], timeout=p["timeout"],
                           workers=p["workers"], node_crio_capabilities=p["node_crio_capabilities"]).run()
    except (KeyError, TypeError) as exc:
        module.fail_json(msg="targets is not a kubelab_verify_targets result: missing %s" % exc)
    exit_with_results(module, results, "in-pod checks failed from %s/%s: " % (probe["namespace"], probe["name"]),
                      label="request", fail_on_check_failure=p["fail_on_check_failure"])


if __name__ == "__main__":
    main()
