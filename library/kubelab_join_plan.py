#!/usr/bin/python
# -*- coding: utf-8 -*-
# kubelab: decide which workers must join the cluster (runs on the control plane).

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: kubelab_join_plan
short_description: Decide which workers need to join a kubeadm cluster
description:
  - Runs on the control plane (usually with C(delegate_to) and C(run_once)).
  - Asks the Kubernetes API once, with C(kubectl get nodes -o json), and combines
    the answer with what each worker reported about its kubelet kubeconfig
    (C(/etc/kubernetes/kubelet.conf)) to plan one action per worker.
  - "Actions: C(join) (new worker, or a stale NotReady Node left by an earlier life
    of the host), C(reset_and_join) (half-joined: kubelet.conf present but no Node, or no
    kubelet.conf but the ca.crt / kubelet config.yaml an unfinished join leaves),
    C(wait) (joined, Node not Ready yet), C(none) (joined and Ready)."
  - Fails with a message naming the control plane when the API does not answer,
    and when a worker without kubelet.conf finds its Node name taken by a Ready Node.
  - Also returns the CA pin for C(kubeadm join --discovery-token-ca-cert-hash),
    computed from the cluster CA certificate on the control plane.
  - With O(wait_ready), polls the Node list until those Nodes are Ready or
    O(wait_timeout) seconds have passed.
  - Only reads; always returns C(changed=false).
version_added: "0.1.0"
author: kubelab developers
options:
  workers:
    description:
      - One entry per worker to plan for.
    type: list
    elements: dict
    default: []
    suboptions:
      host:
        description: Inventory name of the worker.
        type: str
        required: true
      node_name:
        description: Name the worker's Node has (or will have) in the API.
        type: str
        required: true
      kubelet_conf:
        description: Whether C(/etc/kubernetes/kubelet.conf) exists on the worker.
        type: bool
        required: true
      leftovers:
        description:
          - Which of C(/etc/kubernetes/pki/ca.crt) and C(/var/lib/kubelet/config.yaml) exist on the worker.
          - Without kubelet.conf they mean a C(kubeadm join) that did not finish (the kubelet never completed
            its TLS bootstrap); kubeadm join refuses an existing ca.crt, so the worker is reset first.
        type: list
        elements: str
        default: []
  kubeconfig:
    description: Admin kubeconfig on the control plane.
    type: path
    default: /etc/kubernetes/admin.conf
  kubectl:
    description: kubectl executable (name looked up in PATH, or a path).
    type: str
    default: kubectl
  ca_cert:
    description:
      - Cluster CA certificate on the control plane. Its public key pin is returned
        as RV(ca_cert_hash). Set to an empty string to skip.
    type: str
    default: /etc/kubernetes/pki/ca.crt
  wait_ready:
    description:
      - Node names to wait for until they are Ready.
    type: list
    elements: str
    default: []
  wait_timeout:
    description: Seconds to wait for O(wait_ready) Nodes.
    type: int
    default: 300
  poll_interval:
    description: Seconds between two Node list queries while waiting.
    type: int
    default: 3
  request_timeout:
    description: Seconds kubectl waits for one answer of the API.
    type: int
    default: 15
attributes:
  check_mode:
    support: full
notes:
  - The decision table lives in C(module_utils/kubelab_join.py) and is tested by
    C(tests/unit/test_join_plan.py).
seealso:
  - name: kubeadm join
    link: https://kubernetes.io/docs/reference/setup-tools/kubeadm/kubeadm-join/
"""

EXAMPLES = r"""
- name: Plan the join (one API query for all workers)
  kubelab_join_plan:
    workers:
      - host: worker1
        node_name: worker1.example.com
        kubelet_conf: false
        leftovers: [/etc/kubernetes/pki/ca.crt]
  delegate_to: cp1
  run_once: true
  register: plan

- name: Wait until the new Nodes are Ready
  kubelab_join_plan:
    wait_ready: [worker1.example.com]
    wait_timeout: 300
  delegate_to: cp1
  run_once: true
"""

RETURN = r"""
plan:
  description: Action per worker host.
  returned: always
  type: dict
  sample:
    worker1: {action: join, node: worker1.example.com, reason: "no kubelet.conf and no Node worker1.example.com: new worker"}
needs_token:
  description: Whether at least one worker needs C(kubeadm join) (and so a bootstrap token).
  returned: always
  type: bool
  sample: true
joining:
  description: Inventory names of the workers whose action is C(join) or C(reset_and_join).
  returned: always
  type: list
  elements: str
  sample: [worker1]
nodes:
  description: Every Node in the API with its Ready status (C(Ready), C(NotReady), C(Unknown)), at the end of the call.
  returned: always
  type: dict
  sample: {cp1.example.com: Ready, worker1.example.com: NotReady}
ca_cert_hash:
  description: C(sha256:<hex>) pin of the cluster CA public key, as C(--discovery-token-ca-cert-hash) wants it.
  returned: when O(ca_cert) is set
  type: str
  sample: sha256:0e2b5ec6a2a4e1a0d2a2b6ff1d0f3c4e5c7b7e1d1d0a5f3a4b4c3c2b1a090807
waited:
  description: Seconds spent waiting for O(wait_ready).
  returned: always
  type: float
  sample: 4.2
"""

import json
import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.kubelab_join import (
    JOIN_ACTIONS,
    JoinPlanError,
    ca_cert_hash,
    index_nodes,
    not_ready,
    plan_join,
)


def get_nodes(module, kubectl):
    """Return (node_list, error_text) from one ``kubectl get nodes -o json``."""
    cmd = [
        kubectl,
        "--kubeconfig",
        module.params["kubeconfig"],
        "--request-timeout=%ds" % module.params["request_timeout"],
        "get",
        "nodes",
        "-o",
        "json",
    ]
    rc, out, err = module.run_command(cmd)
    if rc != 0:
        return None, "rc=%d: %s" % (rc, (err or out).strip())
    try:
        return json.loads(out), None
    except ValueError as exc:
        return None, "kubectl printed no JSON (%s): %s" % (exc, out[:200])


def main():
    module = AnsibleModule(
        argument_spec=dict(
            workers=dict(
                type="list",
                elements="dict",
                default=[],
                options=dict(
                    host=dict(type="str", required=True),
                    node_name=dict(type="str", required=True),
                    kubelet_conf=dict(type="bool", required=True),
                    leftovers=dict(type="list", elements="str", default=[]),
                ),
            ),
            kubeconfig=dict(type="path", default="/etc/kubernetes/admin.conf"),
            kubectl=dict(type="str", default="kubectl"),
            ca_cert=dict(type="str", default="/etc/kubernetes/pki/ca.crt"),
            wait_ready=dict(type="list", elements="str", default=[]),
            wait_timeout=dict(type="int", default=300),
            poll_interval=dict(type="int", default=3),
            request_timeout=dict(type="int", default=15),
        ),
        supports_check_mode=True,
    )
    params = module.params
    kubectl = params["kubectl"]
    if "/" not in kubectl:
        kubectl = module.get_bin_path(kubectl, required=False, opt_dirs=["/usr/local/bin", "/usr/bin"])
        if not kubectl:
            module.fail_json(
                msg="kubectl not found on the control plane (expected '%s' in PATH); the kube_packages "
                "stage installs it" % params["kubectl"]
            )
    result = dict(changed=False, plan={}, needs_token=False, joining=[], nodes={}, waited=0.0)

    if params["ca_cert"]:
        try:
            with open(params["ca_cert"]) as handle:
                result["ca_cert_hash"] = ca_cert_hash(handle.read())
        except (IOError, OSError, ValueError) as exc:
            module.fail_json(
                msg="cannot compute the CA pin from %s (expected the cluster CA certificate that "
                "kubeadm init writes): %s" % (params["ca_cert"], exc),
                **result
            )

    node_list, error = get_nodes(module, kubectl)
    try:
        planned = plan_join(params["workers"], node_list, error, control_plane="the control plane")
    except JoinPlanError as exc:
        module.fail_json(msg=str(exc), **result)
    result["plan"] = planned["plan"]
    result["needs_token"] = planned["needs_token"]
    result["joining"] = sorted(h for h, p in planned["plan"].items() if p["action"] in JOIN_ACTIONS)
    result["nodes"] = planned["nodes"]

    wanted = params["wait_ready"]
    if wanted:
        start = time.time()
        deadline = start + params["wait_timeout"]
        missing = not_ready(wanted, result["nodes"])
        while missing and time.time() < deadline:
            time.sleep(max(1, params["poll_interval"]))
            node_list, error = get_nodes(module, kubectl)
            if error is None:
                try:
                    result["nodes"] = index_nodes(node_list)
                except JoinPlanError:
                    pass
            missing = not_ready(wanted, result["nodes"])
        result["waited"] = round(time.time() - start, 1)
        if missing:
            module.fail_json(
                msg="Nodes not Ready after %ds (expected Ready): %s"
                % (params["wait_timeout"], ", ".join("%s is %s" % kv for kv in sorted(missing.items()))),
                **result
            )
    module.exit_json(**result)


if __name__ == "__main__":
    main()
