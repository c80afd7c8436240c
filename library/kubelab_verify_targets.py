#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: kubelab developers
# MIT License

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: kubelab_verify_targets
short_description: Wait until the test workloads are ready and discover what to verify from the cluster's objects
description:
  - Reads the Services, EndpointSlices (core Endpoints when the API has no EndpointSlices), Pods and Deployments of a
    namespace, all Nodes and the cluster DNS Service through the Kubernetes API, and returns the verification targets
    that the other C(kubelab_*) probe modules take.
  - Nothing is hard-coded; addresses, ports, nodePorts, externalIPs, pod IPs and the cluster DNS address all come
    from the objects.
  - Readiness first. It waits (up to O(wait_timeout) seconds) until every Deployment of the namespace has all
    replicas ready, every Service has at least one ready endpoint, the probe pod (O(probe_selector)) is ready and
    the cluster DNS Service exists. On timeout it fails and names what is not ready.
  - The expected backends of a Service are the ready pods of every Deployment that the Service reaches. A Service
    that selects only some of them is therefore caught by the spread check (M(kubelab_spread)).
  - Inspect-only; never changes anything (C(changed=false)).
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
    description:
      - Labels of the pod the in-cluster checks run in (busybox). An empty dict means no probe pod is needed
        (RV(targets.probe_pod) is null).
    type: dict
    default: {app: busybox}
  wait_timeout:
    description: Seconds to wait for readiness. V(0) checks once and fails when anything is not ready.
    type: int
    default: 300
  poll_interval:
    description: Seconds between readiness polls.
    type: float
    default: 2.0
notes:
  - Supports check mode (the module only reads).
  - Needs the C(kubernetes) Python client on the controller.
seealso:
  - module: kubelab_http_probe
  - module: kubelab_spread
  - module: kubelab_pod_probe
  - module: kubelab_verify_report
"""

EXAMPLES = r"""
- name: Discover the verification targets
  kubelab_verify_targets:
    kubeconfig: "{{ kubelab_admin_kubeconfig }}"
    namespace: test
    wait_timeout: 300
  register: targets

- name: Show the nodePorts found
  ansible.builtin.debug:
    msg: "{{ targets.targets.services | map(attribute='ports') | flatten | map(attribute='node_port') | select | list }}"
"""

RETURN = r"""
targets:
  description: What the probe modules verify.
  returned: success
  type: dict
  contains:
    namespace:
      description: The workload namespace.
      type: str
    cluster_domain:
      description: Cluster DNS domain.
      type: str
    cluster_dns:
      description: The cluster DNS Service (name, namespace, cluster_ip, ports).
      type: dict
      sample: {"name": "kube-dns", "namespace": "kube-system", "cluster_ip": "10.96.0.10", "ports": []}
    nodes:
      description: Every node with its InternalIP/ExternalIP addresses.
      type: list
      elements: dict
      sample: [{"name": "worker01", "addresses": ["10.20.2.235"]}]
    services:
      description:
        - Every Service of the namespace with type, cluster_ip, external_ips, ports (port, protocol, node_port,
          target_port), endpoints (ip, pod, node, ready) and backends (expected ready pod names).
      type: list
      elements: dict
    pods:
      description: Pods of the namespace that have an IP (name, ip, node, ready, host_network, labels).
      type: list
      elements: dict
    probe_pod:
      description: The ready pod the in-cluster checks run in (name, namespace, container, node), or null.
      type: dict
waited:
  description: Seconds spent waiting for readiness.
  returned: success
  type: float
  sample: 0.4
"""

import time
import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible.module_utils.kubelab_checks import discover_targets, kube_api_client, not_ready_message

try:
    import kubernetes  # noqa: F401  pylint: disable=unused-import
    HAS_KUBERNETES = True
    KUBERNETES_IMPORT_ERROR = None
except ImportError:
    HAS_KUBERNETES = False
    KUBERNETES_IMPORT_ERROR = traceback.format_exc()


def discover(params, client_factory=kube_api_client, sleep=time.sleep, clock=time.monotonic):
    """Poll until ready; returns (targets, waited, waiting-list)."""
    api = client_factory(params["kubeconfig"], params.get("context"))
    return discover_targets(api, params["namespace"], params["dns_service"], params["dns_namespace"],
                            params["cluster_domain"], params["probe_selector"], params["wait_timeout"],
                            params["poll_interval"], sleep=sleep, clock=clock)


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
        ),
        supports_check_mode=True,
    )
    if not HAS_KUBERNETES:
        module.fail_json(msg=missing_required_lib("kubernetes"), exception=KUBERNETES_IMPORT_ERROR)
    params = module.params
    try:
        targets, waited, waiting = discover(params)
    except Exception as exc:  # API unreachable, bad kubeconfig, RBAC
        module.fail_json(msg="cannot read the cluster objects of namespace %s with %s: %s" % (
            params["namespace"], params["kubeconfig"], exc))
    if waiting:
        module.fail_json(
            msg=not_ready_message(params["wait_timeout"], params["namespace"], waiting, params["probe_selector"],
                                  params["dns_namespace"], params["dns_service"]),
            waiting=waiting, targets=targets, changed=False)
    module.exit_json(changed=False, targets=targets, waited=round(waited, 3))


if __name__ == "__main__":
    main()
