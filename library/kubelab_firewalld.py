#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: kubelab developers
# MIT License

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: kubelab_firewalld
short_description: Open ports in firewalld, permanently and at runtime, with the firewall-cmd command
description:
  - Makes sure the given ports are open in a firewalld zone both in the permanent configuration and in the running
    firewall, without a reload (so established connections and runtime-only rules stay).
  - Uses only the C(firewall-cmd) command, so it needs no firewalld Python bindings. On EL8 this matters, because ansible-core
    2.19 runs modules with Python 3.8 or later, while EL8's firewalld bindings exist only for platform-python 3.6, so
    M(ansible.posix.firewalld) cannot work there.
  - Reads the open ports first and adds only the missing ones in one command per configuration; V(changed) only when it
    added something. In check mode it adds nothing and returns what it would add.
version_added: "0.1.0"
author: kubelab developers
options:
  ports:
    description: Ports as C(PORT/PROTO) or C(LOW-HIGH/PROTO), as firewall-cmd writes them.
    type: list
    elements: str
    required: true
  zone:
    description: Zone to change. Default is firewalld's default zone.
    type: str
notes:
  - Supports check mode.
  - Fails when firewalld is not running (C(firewall-cmd --state)).
  - A port is compared as written; a port inside an already open range is still added on its own.
seealso:
  - module: ansible.posix.firewalld
"""

EXAMPLES = r"""
- name: Control-plane ports
  kubelab_firewalld:
    ports: [6443/tcp, 2379-2380/tcp, 10250/tcp, 10257/tcp, 10259/tcp]
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
"""

from ansible.module_utils.basic import AnsibleModule


def missing(wanted, present):
    """Ports of wanted that are not in present, in wanted's order, without duplicates."""
    have = set(present)
    out = []
    for port in wanted:
        if port not in have and port not in out:
            out.append(port)
    return out


def add_command(firewall_cmd, zone, ports, permanent):
    cmd = [firewall_cmd]
    if permanent:
        cmd.append("--permanent")
    cmd.append("--zone=%s" % zone)
    cmd.extend("--add-port=%s" % port for port in ports)
    return cmd


def main():
    module = AnsibleModule(
        argument_spec=dict(
            ports=dict(type="list", elements="str", required=True),
            zone=dict(type="str"),
        ),
        supports_check_mode=True,
    )
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
    wanted = module.params["ports"]
    add_permanent = missing(wanted, run([fwcmd, "--permanent", "--zone=%s" % zone, "--list-ports"]).split())
    add_runtime = missing(wanted, run([fwcmd, "--zone=%s" % zone, "--list-ports"]).split())
    changed = bool(add_permanent or add_runtime)
    if changed and not module.check_mode:
        if add_permanent:
            run(add_command(fwcmd, zone, add_permanent, True))
        if add_runtime:
            run(add_command(fwcmd, zone, add_runtime, False))
    module.exit_json(changed=changed, zone=zone, added_permanent=add_permanent, added_runtime=add_runtime)


if __name__ == "__main__":
    main()
