#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: kubelab developers
# MIT License

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: kubelab_firewalld
short_description: Open ports and bind sources and interfaces to a firewalld zone, permanently and at runtime, with firewall-cmd
description:
  - Makes sure the given ports are open in a firewalld zone, and the given sources (networks) and interfaces are bound to
    it, both in the permanent configuration and in the running firewall, without a reload (so established connections and
    runtime-only rules stay).
  - Uses only the C(firewall-cmd) command, so it needs no firewalld Python bindings. On EL8 this matters, because ansible-core
    2.19 runs modules with Python 3.8 or later, while EL8's firewalld bindings exist only for platform-python 3.6, so
    M(ansible.posix.firewalld) cannot work there.
  - Reads the zone first and changes only what is missing, one command per kind (ports, sources, interfaces) and
    configuration; V(changed) only when it changed something. In check mode it changes nothing and returns what it would do.
  - Sources and interfaces are bound with C(--change-source) / C(--change-interface), so one that is bound to another zone is
    moved to this one (firewalld binds a source or an interface to one zone only; C(--add-*) would fail with ZONE_CONFLICT).
version_added: "0.1.0"
author: kubelab developers
options:
  ports:
    description: Ports as C(PORT/PROTO) or C(LOW-HIGH/PROTO), as firewall-cmd writes them.
    type: list
    elements: str
    default: []
  sources:
    description:
      - Networks in CIDR form (IPv4 or IPv6, no host bits set, for example C(10.244.0.0/16)) or single addresses, to bind
        to the zone. Packets from (and, when forwarded, to) them are handled by this zone.
    type: list
    elements: str
    default: []
  interfaces:
    description:
      - Interface names to bind to the zone (1 to 15 characters, none of space, C(/), C(:), C(!), C(*); a final C(+)
        matches every name with that prefix). They need not exist yet (flannel's C(cni0), C(flannel.1) appear later).
    type: list
    elements: str
    default: []
  zone:
    description: Zone to change. Default is firewalld's default zone.
    type: str
notes:
  - Supports check mode.
  - Fails when firewalld is not running (C(firewall-cmd --state)).
  - A port is compared as written; a port inside an already open range is still added on its own.
  - Invalid sources or interfaces fail before anything is read or changed, each one named with what is allowed.
seealso:
  - module: ansible.posix.firewalld
"""

EXAMPLES = r"""
- name: Control-plane ports
  kubelab_firewalld:
    ports: [6443/tcp, 2379-2380/tcp, 10250/tcp, 10257/tcp, 10259/tcp]

- name: Let the pod network and the CNI interfaces through (firewalld 0.9 rejects forwarded traffic no zone accepts)
  kubelab_firewalld:
    zone: trusted
    sources: [10.244.0.0/16]
    interfaces: [cni0, flannel.1]
"""

RETURN = r"""
zone:
  description: The zone that was checked (the default zone when O(zone) was not given).
  returned: always
  type: str
  sample: public
added_permanent:
  description: Ports added (or that would be added in check mode) to the permanent configuration.
  returned: always
  type: list
  elements: str
  sample: [6443/tcp]
added_runtime:
  description: Ports added (or that would be added in check mode) to the running firewall.
  returned: always
  type: list
  elements: str
  sample: [6443/tcp]
sources_added_permanent:
  description: Sources bound (or that would be bound) to the zone in the permanent configuration.
  returned: always
  type: list
  elements: str
  sample: [10.244.0.0/16]
sources_added_runtime:
  description: Sources bound (or that would be bound) to the zone in the running firewall.
  returned: always
  type: list
  elements: str
  sample: [10.244.0.0/16]
interfaces_added_permanent:
  description: Interfaces bound (or that would be bound) to the zone in the permanent configuration.
  returned: always
  type: list
  elements: str
  sample: [cni0, flannel.1]
interfaces_added_runtime:
  description: Interfaces bound (or that would be bound) to the zone in the running firewall.
  returned: always
  type: list
  elements: str
  sample: [cni0, flannel.1]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible.module_utils.kubelab_validate import firewalld_interface_tail, firewalld_source_tail


def problems(sources, interfaces):
    """The invalid sources and interfaces, one text each; the same check as the
    validator's for node_prep_firewalld_trusted_sources/_interfaces
    (module_utils/kubelab_validate.py)."""
    out = ["sources: %s" % t for t in (firewalld_source_tail(v) for v in sources) if t]
    out.extend("interfaces: %s" % t for t in (firewalld_interface_tail(v) for v in interfaces) if t)
    return out


def missing(wanted, present):
    """Items of wanted that are not in present, in wanted's order, without duplicates."""
    have = set(present)
    out = []
    for item in wanted:
        if item not in have and item not in out:
            out.append(item)
    return out


def change_command(firewall_cmd, zone, flag, items, permanent):
    cmd = [firewall_cmd]
    if permanent:
        cmd.append("--permanent")
    cmd.append("--zone=%s" % zone)
    cmd.extend("--%s=%s" % (flag, item) for item in items)
    return cmd


def main():
    module = AnsibleModule(
        argument_spec=dict(
            ports=dict(type="list", elements="str", default=[]),
            sources=dict(type="list", elements="str", default=[]),
            interfaces=dict(type="list", elements="str", default=[]),
            zone=dict(type="str"),
        ),
        supports_check_mode=True,
    )
    found = problems(module.params["sources"], module.params["interfaces"])
    if found:
        module.fail_json(msg="; ".join(found), problems=found)
    fwcmd = module.get_bin_path("firewall-cmd", required=True)

    def run(cmd):
        rc, out, err = module.run_command(cmd)
        if rc != 0:
            module.fail_json(msg="`%s` failed (rc %d): %s" % (" ".join(cmd), rc, (err or out).strip()),
                             rc=rc, stdout=out, stderr=err)
        return out.strip()

    rc, out, err = module.run_command([fwcmd, "--state"])
    if rc != 0:
        module.fail_json(msg="firewalld is not running: `firewall-cmd --state` said %r" % (err or out).strip())
    zone = module.params["zone"] or run([fwcmd, "--get-default-zone"])
    # (option, firewall-cmd list flag, change flag, result key)
    kinds = [
        ("ports", "list-ports", "add-port", "added"),
        ("sources", "list-sources", "change-source", "sources_added"),
        ("interfaces", "list-interfaces", "change-interface", "interfaces_added"),
    ]
    result = {}
    todo = []
    for option, list_flag, change_flag, key in kinds:
        wanted = module.params[option]
        for permanent, suffix in ((True, "_permanent"), (False, "_runtime")):
            add = []
            if wanted:
                present = run(change_command(fwcmd, zone, list_flag, [], permanent) + ["--" + list_flag])
                add = missing(wanted, present.split())
            result[key + suffix] = add
            if add:
                todo.append(change_command(fwcmd, zone, change_flag, add, permanent))
    changed = bool(todo)
    if changed and not module.check_mode:
        for cmd in todo:
            run(cmd)
    module.exit_json(changed=changed, zone=zone, **result)


if __name__ == "__main__":
    main()
