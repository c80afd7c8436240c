#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: kubelab developers
# MIT License

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: kubelab_validate
short_description: Validate kubelab's whole input (inventory, every host's variables, every stage's settings)
description:
  - Checks the inventory's shape (groups, host names, node addresses), every inventory host's own variables and
    the controller's, for every stage (kubelab_*, preflight_*, node_prep_*, crio_*, kube_packages_*,
    control_plane_*, workers_*, workloads_*, verify_*, reset_*) and, when given, each node's operating system.
  - With O(roles_dir) the variables are checked against the roles' C(meta/argument_specs.yml) (types, choices,
    elements, sub-options) and their defaults, and a variable with a kubelab role prefix that no role knows is
    reported as a likely typo with the closest known name.
  - Semantic rules on top - supported Kubernetes versions, capability names (NET_RAW required by verify),
    networks (kubeadm's limits - a /24 per node out of the pod network, at least 10 service addresses), ports and
    nodePorts, image references, labels, regular expressions, durations, the Python overrides, the extra
    C(kubeadm join) arguments.
  - With O(addresses) (facts), each node's C(kubelab_node_ip) must be one of its own addresses.
  - Reports every problem at once, one line each, naming the host(s), the variable, the value and what is allowed,
    and fails when there is any.
  - Optionally plans what to do about each node's cgroup version (see O(cgroup_versions)) and warns in the run
    output when cgroup v1 is tolerated.
  - Pure computation on the data it is given (and the role files under O(roles_dir)); it never contacts a node.
    Run it on the controller (a play on localhost, or C(delegate_to=localhost) with C(run_once=true)).
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
      - Every inventory host's own variables, host name to dict (the role-prefixed variables of C(hostvars[host]),
        that is host_vars and group_vars as that host sees them). A host's view is the role defaults, then
        O(settings), then these. Null values (not renderable before facts exist) are not checked.
    type: dict
    default: {}
  settings:
    description:
      - The controller's variables (C(hostvars['localhost'])), variable name to value; the workloads stage and the
        verify report run there. Also the base of every host's view. Absent variables and variables whose value
        is null are not checked.
    type: dict
    default: {}
  roles_dir:
    description:
      - Directory holding the kubelab roles. Their C(meta/argument_specs.yml) and C(defaults/main.yml) are read
        on the controller. Without it only the built-in rules run (no type or typo checks).
    type: path
  platforms:
    description:
      - Per-host operating system, host name to either a dict with key C(os_release) (the content of
        C(/etc/os-release)) or Ansible facts (keys C(os_family), C(distribution_major_version), C(distribution)). Hosts without an entry are not
        platform-checked.
    type: dict
    default: {}
  addresses:
    description:
      - Per-host list of the host's own addresses (its facts C(all_ipv4_addresses) and C(all_ipv6_addresses)). The
        host's C(kubelab_node_ip) must be one of them (the kubelet refuses a node IP the host does not have). Hosts
        without an entry, or whose entry is null (no facts, as on a node that check mode ended before its Python), are not
        checked.
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
      w1: {kubelab_node_ip: 192.168.251.11, crio_default_capabilities: [CHOWN, NET_RAW]}
    settings:
      kubelab_kubernetes_version: "1.35"
    roles_dir: "{{ playbook_dir }}/../roles"
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
from ansible.module_utils.kubelab_validate import (
    cgroup_plan,
    load_roles,
    platform_from_os_release,
    role_defaults,
    validate,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            groups=dict(type="dict", required=True),
            hostvars=dict(type="dict", default={}),
            settings=dict(type="dict", default={}),
            platforms=dict(type="dict", default={}),
            cgroup_versions=dict(type="dict", default={}),
            addresses=dict(type="dict", default={}),
            roles_dir=dict(type="path"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    # null means "not set": the role default applies and is not checked here
    settings = dict((k, v) for k, v in params["settings"].items() if v is not None)
    roles = None
    if params["roles_dir"]:
        try:
            roles = load_roles(params["roles_dir"])
        except ValueError as exc:
            module.fail_json(msg="kubelab_validate: the roles' argument specs cannot be read: %s" % exc)
        if not roles:
            module.fail_json(msg="kubelab_validate: roles_dir %s holds none of kubelab's roles" % params["roles_dir"])
    problems = validate(params["groups"], params["hostvars"], settings, params["platforms"], roles=roles,
                        addresses=params["addresses"])

    # the cgroup plan reads the settings in effect: the role defaults, then the controller's
    effective = dict(role_defaults(roles))
    effective.update(settings)
    cgroup = {}
    for host, version in sorted(params["cgroup_versions"].items()):
        try:
            version = int(version)
        except (TypeError, ValueError):
            version = None
        if version not in (1, 2):
            problems.append("host %s: cgroup version %r is neither 1 nor 2" % (host, params["cgroup_versions"][host]))
            continue
        plan = cgroup_plan(version, effective.get("kubelab_kubernetes_version", ""),
                           effective.get("preflight_cgroup_v1_policy", "tolerate"),
                           effective.get("preflight_allow_reboot") is True)
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
        if params["addresses"]:
            # after facts: preflight may have installed the Python Ansible needs
            untouched = "no node was configured (at most preflight installed the Python for Ansible)"
        elif params["platforms"] or params["cgroup_versions"]:
            untouched = "no host was changed"
        else:
            untouched = "no host was contacted"
        module.fail_json(
            msg="kubelab found %d problem(s) in the inventory and variables, %s:\n%s"
                % (len(problems), untouched, "\n".join("- " + p for p in problems)),
            changed=False, problems=problems, cgroup=cgroup, platforms=platforms)
    module.exit_json(changed=False, problems=[], cgroup=cgroup, platforms=platforms)


if __name__ == "__main__":
    main()
