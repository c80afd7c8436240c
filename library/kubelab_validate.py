#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: kubelab developers
# MIT License

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: kubelab_validate
short_description: Validate a kubelab inventory and its variables before any host is changed
description:
  - Checks the inventory groups, node addresses, the Kubernetes version, the CRI-O capability list, network
    settings, policy variables and, when given, each node's operating system.
  - Reports every problem at once, one line each, naming the host or the variable, and fails when there is any.
  - Optionally plans what to do about each node's cgroup version (see O(cgroup_versions)) and warns in the run
    output when cgroup v1 is tolerated.
  - Pure computation on the data it is given; it never contacts a node. Run it on the controller
    (C(delegate_to=localhost), C(run_once=true)).
  - The same checks are available to Python code as C(ansible.module_utils.kubelab_validate.validate) (used by
    C(kubelab inventory check)).
version_added: "0.1.0"
author: kubelab developers
options:
  groups:
    description:
      - Inventory groups, group name to list of host names (pass Ansible's C(groups)).
    type: dict
    required: true
  hostvars:
    description:
      - Per-host variables, host name to dict. Only C(kubelab_node_ip) is read; hosts without it are not
        address-checked.
    type: dict
    default: {}
  settings:
    description:
      - Cluster-wide variables to check, variable name to value (C(kubelab_kubernetes_version),
        C(crio_default_capabilities), C(crio_capabilities_dropin), C(kubelab_pod_network_cidr),
        C(kubelab_service_cidr), C(kubelab_cluster_dns), C(preflight_cgroup_v1_policy), C(preflight_allow_reboot),
        C(node_prep_selinux_mode), C(node_prep_firewalld_*_ports), the group names). Absent variables and variables
        whose value is null are not checked.
    type: dict
    default: {}
  platforms:
    description:
      - Per-host operating system, host name to either a dict with key C(os_release) (the content of
        C(/etc/os-release)) or Ansible facts (keys C(os_family), C(distribution_major_version), C(distribution)). Hosts without an entry are not
        platform-checked.
    type: dict
    default: {}
  cgroup_versions:
    description:
      - Per-host cgroup version (1 or 2). When given, RV(cgroup) holds the plan for each host and a warning is
        emitted for every host whose cgroup v1 is tolerated.
    type: dict
    default: {}
notes:
  - Supports check mode; it changes nothing in either mode.
seealso:
  - module: ansible.builtin.assert
"""

EXAMPLES = r"""
- name: Validate the inventory and variables
  kubelab_validate:
    groups: "{{ groups }}"
    hostvars:
      cp1: {kubelab_node_ip: 192.168.251.10}
      w1: {kubelab_node_ip: 192.168.251.11}
    settings:
      kubelab_kubernetes_version: "{{ kubelab_kubernetes_version }}"
      crio_default_capabilities: "{{ crio_default_capabilities }}"
    platforms:
      cp1: {os_release: "{{ os_release_text }}"}
  delegate_to: localhost
  run_once: true

- name: Plan the cgroup policy
  kubelab_validate:
    groups: "{{ groups }}"
    settings:
      kubelab_kubernetes_version: "1.35"
      preflight_cgroup_v1_policy: tolerate
    cgroup_versions: {cp1: 1, w1: 2}
  delegate_to: localhost
  run_once: true
  register: plan
"""

RETURN = r"""
problems:
  description: Every problem found, one line each. Empty when the inventory is valid.
  returned: always
  type: list
  elements: str
  sample: ["inventory: group 'control_plane' has no host; exactly one control-plane host is required"]
cgroup:
  description:
    - Per-host cgroup plan, for the hosts in O(cgroup_versions).
    - C(action) is V(none) (cgroup v2), V(tolerate) (keep v1, kubelet C(failCgroupV1=false)) or V(migrate)
      (switch the kernel to the unified hierarchy and reboot).
  returned: always
  type: dict
  sample: {"cp1": {"version": 1, "action": "tolerate", "fail_cgroupv1": false}}
platforms:
  description:
    - Per-host platform from O(platforms) as kubelab reads it, C(family) (Ansible's os_family name), C(major) and
      C(id) (os-release C(ID), lower case).
  returned: always
  type: dict
  sample: {"cp1": {"family": "RedHat", "major": "8", "id": "rocky"}}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.kubelab_validate import cgroup_plan, platform_from_os_release, validate


def main():
    module = AnsibleModule(
        argument_spec=dict(
            groups=dict(type="dict", required=True),
            hostvars=dict(type="dict", default={}),
            settings=dict(type="dict", default={}),
            platforms=dict(type="dict", default={}),
            cgroup_versions=dict(type="dict", default={}),
        ),
        supports_check_mode=True,
    )
    params = module.params
    # null means "not set": the role default applies and is not checked here
    settings = dict((k, v) for k, v in params["settings"].items() if v is not None)
    problems = validate(params["groups"], params["hostvars"], settings, params["platforms"])

    cgroup = {}
    for host, version in sorted(params["cgroup_versions"].items()):
        try:
            version = int(version)
        except (TypeError, ValueError):
            version = None
        if version not in (1, 2):
            problems.append("host %s: cgroup version %r is neither 1 nor 2" % (host, params["cgroup_versions"][host]))
            continue
        plan = cgroup_plan(version, settings.get("kubelab_kubernetes_version", ""),
                           settings.get("preflight_cgroup_v1_policy", "tolerate"),
                           settings.get("preflight_allow_reboot") is True)
        if plan["warning"]:
            module.warn("host %s: %s" % (host, plan["warning"]))
        cgroup[host] = {"version": version, "action": plan["action"], "fail_cgroupv1": plan["fail_cgroupv1"]}

    platforms = {}
    for host, info in sorted(params["platforms"].items()):
        if isinstance(info, dict) and "os_release" in info:
            family, major, ident = platform_from_os_release(info["os_release"])
        else:
            info = info if isinstance(info, dict) else {}
            family = str(info.get("os_family", ""))
            major = str(info.get("distribution_major_version", ""))
            ident = str(info.get("distribution", "")).lower()
        platforms[host] = {"family": family, "major": major, "id": ident}

    if problems:
        module.fail_json(
            msg="kubelab preflight found %d problem(s), no host was changed:\n%s"
                % (len(problems), "\n".join("- " + p for p in problems)),
            changed=False, problems=problems, cgroup=cgroup, platforms=platforms)
    module.exit_json(changed=False, problems=[], cgroup=cgroup, platforms=platforms)


if __name__ == "__main__":
    main()
