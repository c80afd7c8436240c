#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: kubelab developers
# MIT License
from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: kubelab_preflight_plan
short_description: Per node, the Python interpreter to use and what kubeadm's preflight must ignore
description:
  - Decides, on the controller and for every node at once, from what preflight's raw probe read on each node
    (C(kubelab_python_found=PATH) lines, C(kubelab_kernel=RELEASE)) and the validated platform and cgroup plan.
  - "Interpreter: the first candidate of the node's OS (vars file) that exists; when none exists, the package to
    install and the path it provides. C(preflight_python_interpreter) (per node) wins over everything;
    C(preflight_python_by_os) (most specific OS key first: C(Rocky-8), C(RedHat-8), C(RedHat)) wins over the OS
    default."
  - "kubeadm: whether the SystemVerification preflight check of the pinned Kubernetes minor fails on that node's
    kernel release and cgroup version (k8s.io/system-validators as vendored by that kubeadm); only then is
    C(SystemVerification) to be ignored. The rules are module_utils/kubelab_sysverify.py."
  - Only reads its arguments; never changes anything.
version_added: "1.0.0"
author: kubelab developers
options:
  nodes:
    description:
      - Per node name, a dict with C(probe) (the probe's stdout), C(family), C(major), C(id) (from the
        validation), C(cgroup_version) (1 or 2, as the node will run when kubeadm runs), C(os_python) (the OS
        vars file's C(__preflight_python)) and C(interpreter) (the node's C(preflight_python_interpreter), or
        empty).
    type: dict
    required: true
  kubernetes_version:
    description: The pinned Kubernetes minor, C(1.NN).
    type: str
    required: true
  python_by_os:
    description: The user's C(preflight_python_by_os) (OS key -> C(candidates), C(package)).
    type: dict
    default: {}
notes:
  - Supports check mode (it changes nothing).
"""

EXAMPLES = r"""
- name: Plan the interpreter and kubeadm's ignored preflight checks
  kubelab_preflight_plan:
    kubernetes_version: "1.35"
    nodes:
      cp1:
        probe: "kubelab_kernel=4.18.0-553.el8_10.x86_64\nkubelab_python_found=/usr/bin/python3.11\n"
        family: RedHat
        major: "8"
        id: rocky
        cgroup_version: 1
        os_python: {candidates: [/usr/bin/python3.11], package: python3.11, installer: dnf}
  delegate_to: localhost
  run_once: true
  register: plan
"""

RETURN = r"""
plan:
  description: Per node, C(python) (C(interpreter), C(present), C(install), C(installer), C(source),
    C(candidates)), C(kernel) and C(kubeadm) (C(ignore_preflight_errors), C(reason), C(errors), C(warnings)).
  returned: always
  type: dict
  sample:
    cp1:
      kernel: 4.18.0-553.el8_10.x86_64
      python: {interpreter: /usr/bin/python3.11, present: true, install: null, installer: dnf, source: OS default,
               candidates: [/usr/bin/python3.11]}
      kubeadm:
        ignore_preflight_errors: [SystemVerification]
        reason: "kubeadm 1.35's SystemVerification check fails here: cgroup v1 with kubelet 1.35; ignored"
        errors: [cgroup v1 with kubelet 1.35]
        warnings: []
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.kubelab_interpreter import choose, found_paths, os_keys
from ansible.module_utils.kubelab_sysverify import system_verification


def probe_value(stdout, key):
    for line in str(stdout or "").replace("\r", "").splitlines():
        line = line.strip()
        if line.startswith(key + "="):
            return line.split("=", 1)[1].strip()
    return ""


def main():
    module = AnsibleModule(
        argument_spec=dict(
            nodes=dict(type="dict", required=True),
            kubernetes_version=dict(type="str", required=True),
            python_by_os=dict(type="dict", default={}),
        ),
        supports_check_mode=True,
    )
    params = module.params
    plan, problems = {}, []
    for host, info in sorted(params["nodes"].items()):
        info = info if isinstance(info, dict) else {}
        probe = info.get("probe", "")
        keys = os_keys(info.get("family"), info.get("major"), info.get("id"))
        entry = {"kernel": probe_value(probe, "kubelab_kernel")}
        try:
            entry["python"] = choose(info.get("os_python") or {}, found_paths(probe), keys,
                                     params["python_by_os"], info.get("interpreter") or None)
        except ValueError as exc:
            problems.append("host %s: variable preflight_python_by_os / the OS vars file (%s): %s; set candidates "
                            "(a list of interpreter paths) and package (the package that provides the first)"
                            % (host, ", ".join(keys) or "unknown OS", exc))
            continue
        try:
            entry["kubeadm"] = system_verification(entry["kernel"], info.get("cgroup_version"),
                                                   params["kubernetes_version"])
        except ValueError as exc:
            problems.append("host %s: cannot tell what kubeadm's SystemVerification check says (kernel %r, cgroup "
                            "version %r, kubelab_kubernetes_version %r): %s; expected a kernel release, cgroup 1 or 2 "
                            "and a version 1.NN" % (host, entry["kernel"], info.get("cgroup_version"),
                                                    params["kubernetes_version"], exc))
            continue
        if info.get("interpreter") and not entry["python"]["present"]:
            problems.append("host %s: variable preflight_python_interpreter is %s, which does not exist there; install "
                            "it, or unset the variable so the OS's candidates are used" % (host, info["interpreter"]))
            continue
        entry["kubeadm"]["ignore_preflight_errors"] = entry["kubeadm"].pop("ignore")
        plan[host] = entry
    if problems:
        module.fail_json(msg="; ".join(problems), problems=problems, plan=plan)
    module.exit_json(changed=False, plan=plan)


if __name__ == "__main__":
    main()
