#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: kubelab developers
# MIT License

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: kubelab_dnf
short_description: Install pinned RPM packages and version-lock them with the dnf and rpm commands
description:
  - Makes sure packages are installed at a version matching a pattern and, optionally, locked at that version with
    the dnf versionlock plugin.
  - Works through the C(rpm) and C(dnf) command-line tools only, so it needs no dnf Python bindings. On EL8 this matters, because
    ansible-core 2.19 runs modules with Python 3.8 or later (for example python3.11), while EL8's dnf bindings
    exist only for platform-python 3.6, so M(ansible.builtin.dnf) cannot work there.
  - Idempotent and honest. It reads the installed versions (C(rpm -q)) and the lock list first, runs only the commands
    that are needed, and reports V(changed) only when it ran one. In check mode it runs nothing and returns the
    commands it would run.
version_added: "0.1.0"
author: kubelab developers
options:
  name:
    description: Package names.
    type: list
    elements: str
    required: true
  version:
    description:
      - Shell-style pattern the installed C(VERSION) or C(VERSION-RELEASE) must match, for example V(1.35.*) or
        V(1.35.0-150500.1.1). Packages whose installed version does not match are installed at
        C(NAME-VERSION) (dnf picks the highest match; a lower one is a downgrade).
      - Without it any installed version is accepted and missing packages get the repository's newest.
    type: str
  lock:
    description:
      - Lock every package at its installed version with C(dnf versionlock add), replacing an older lock of the same
        package. A lock that blocks a needed version change is deleted first.
    type: bool
    default: false
  lock_plugin_package:
    description:
      - Package that provides the versionlock plugin. Installed first when O(lock=true) and the plugin's
        configuration file O(versionlock_conf) is missing.
    type: str
    default: python3-dnf-plugin-versionlock
  versionlock_conf:
    description: The versionlock plugin's configuration file (it names the lock list file).
    type: path
    default: /etc/dnf/plugins/versionlock.conf
notes:
  - Supports check mode.
  - The repositories must already be configured (for example with M(ansible.builtin.yum_repository)).
seealso:
  - module: ansible.builtin.dnf
  - name: dnf versionlock
    description: The dnf versionlock plugin.
    link: https://dnf-plugins-core.readthedocs.io/en/latest/versionlock.html
"""

EXAMPLES = r"""
- name: Kubernetes packages at the cluster's minor version, locked
  kubelab_dnf:
    name: [kubelet, kubeadm, kubectl]
    version: "1.35.*"
    lock: true

- name: CRI-O at the same minor, not locked
  kubelab_dnf:
    name: [cri-o]
    version: "1.35.*"
"""

RETURN = r"""
installed:
  description: Installed version (C(EPOCH:VERSION-RELEASE)) of each package after the run (before it in check mode).
  returned: always
  type: dict
  sample: {"kubelet": "0:1.35.0-150500.1.1", "kubeadm": "0:1.35.0-150500.1.1"}
locks:
  description: The lock list entries for the packages after the run (before it in check mode).
  returned: always
  type: list
  elements: str
  sample: ["kubelet-0:1.35.0-150500.1.1.*"]
commands:
  description: The commands run (or, in check mode, that would run), in order.
  returned: always
  type: list
  elements: list
  sample: [["dnf", "-y", "install", "kubelet-1.35.*"], ["dnf", "-y", "versionlock", "add", "kubelet"]]
"""

import fnmatch
import os
import re

from ansible.module_utils.basic import AnsibleModule

_LOCK_RE = re.compile(r"^(?P<name>.+)-(?P<epoch>[0-9]+):(?P<version>[^-]+)-(?P<release>.+)\.\*$")
_QUERY_FORMAT = "%{NAME}\t%{EPOCHNUM}\t%{VERSION}\t%{RELEASE}\n"


def parse_rpm_query(output):
    """Map name -> (epoch, version, release) from `rpm -q --qf QUERY_FORMAT` output."""
    installed = {}
    for line in output.splitlines():
        parts = line.split("\t")
        if len(parts) == 4:
            installed[parts[0]] = (parts[1], parts[2], parts[3])
    return installed


def parse_locks(text):
    """Map name -> list of lock entries from a versionlock list (exclusions '!' are skipped)."""
    locks = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or line.startswith("!"):
            continue
        match = _LOCK_RE.match(line)
        if match:
            locks.setdefault(match.group("name"), []).append(line)
    return locks


def evr(entry):
    epoch, version, release = entry
    return "%s:%s-%s" % (epoch, version, release)


def version_matches(entry, pattern):
    if not pattern:
        return True
    _epoch, version, release = entry
    return fnmatch.fnmatchcase(version, pattern) or fnmatch.fnmatchcase("%s-%s" % (version, release), pattern)


def lock_entry(name, entry):
    return "%s-%s.*" % (name, evr(entry))


def plan(names, version, lock, installed, locks):
    """Commands that bring the packages to the wanted state, in order.

    :param installed: name -> (epoch, version, release) of installed packages.
    :param locks: name -> list of current lock entries.
    :returns: (commands, to_install, to_lock) where commands is a list of argv
        lists; to_lock are the names to lock once the installation is done
        (their final version is only known then).
    """
    to_install = [n for n in names if n not in installed or not version_matches(installed[n], version)]
    commands = []
    if lock:
        stale = []
        to_lock = []
        for name in names:
            current = locks.get(name, [])
            if name in to_install or name not in installed:
                stale.extend(current)
                to_lock.append(name)
            elif current != [lock_entry(name, installed[name])]:
                stale.extend(current)
                to_lock.append(name)
        if stale:
            commands.append(["dnf", "-y", "versionlock", "delete"] + stale)
    else:
        to_lock = []
    if to_install:
        specs = ["%s-%s" % (n, version) if version else n for n in to_install]
        commands.append(["dnf", "-y", "install"] + specs)
    if to_lock:
        commands.append(["dnf", "-y", "versionlock", "add"] + to_lock)
    return commands, to_install, to_lock


def read_lock_list(conf_path):
    """Return (plugin_present, lock file text)."""
    if not os.path.exists(conf_path):
        return False, ""
    locklist = "/etc/dnf/plugins/versionlock.list"
    with open(conf_path) as handle:
        for line in handle:
            key, sep, value = line.partition("=")
            if sep and key.strip() == "locklist":
                locklist = value.strip()
    if not os.path.exists(locklist):
        return True, ""
    with open(locklist) as handle:
        return True, handle.read()


class Runner:
    def __init__(self, module):
        self.module = module
        self.rpm = module.get_bin_path("rpm", required=True)
        self.dnf = module.get_bin_path("dnf", required=True)
        self.ran = []

    def query(self, names):
        rc, out, err = self.module.run_command([self.rpm, "-q", "--qf", _QUERY_FORMAT] + list(names))
        # rc is the number of packages not installed; anything else on stderr is a real error
        if rc != 0 and err.strip():
            self.module.fail_json(msg="rpm -q %s failed (rc %d): %s" % (" ".join(names), rc, err.strip()))
        return parse_rpm_query(out)

    def run(self, argv):
        cmd = [self.dnf] + argv[1:] if argv[0] == "dnf" else argv
        rc, out, err = self.module.run_command(cmd, environ_update={"LC_ALL": "C"})
        self.ran.append(argv)
        if rc != 0:
            self.module.fail_json(msg="`%s` failed (rc %d): %s" % (" ".join(cmd), rc, (err or out).strip()),
                                  rc=rc, stdout=out, stderr=err, commands=self.ran)
        return out


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="list", elements="str", required=True),
            version=dict(type="str"),
            lock=dict(type="bool", default=False),
            lock_plugin_package=dict(type="str", default="python3-dnf-plugin-versionlock"),
            versionlock_conf=dict(type="path", default="/etc/dnf/plugins/versionlock.conf"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    names = params["name"]
    runner = Runner(module)

    commands = []
    plugin_present, locktext = read_lock_list(params["versionlock_conf"])
    if params["lock"] and not plugin_present:
        commands.append(["dnf", "-y", "install", params["lock_plugin_package"]])
    installed = runner.query(names)
    planned, _to_install, _to_lock = plan(names, params["version"], params["lock"], installed,
                                          parse_locks(locktext))
    commands.extend(planned)

    if module.check_mode or not commands:
        locks = parse_locks(locktext)
        module.exit_json(changed=bool(commands), commands=commands,
                         installed=dict((n, evr(e)) for n, e in installed.items()),
                         locks=[entry for n in names for entry in locks.get(n, [])])

    for argv in commands:
        runner.run(argv)

    installed = runner.query(names)
    wrong = [n for n in names if n not in installed or not version_matches(installed[n], params["version"])]
    if wrong:
        module.fail_json(
            msg="after installing, %s: expected version %s, found %s" % (
                ", ".join(wrong), params["version"],
                ", ".join("%s %s" % (n, evr(installed[n]) if n in installed else "not installed") for n in wrong)),
            commands=runner.ran)
    _plugin, locktext = read_lock_list(params["versionlock_conf"])
    locks = parse_locks(locktext)
    module.exit_json(changed=True, commands=runner.ran,
                     installed=dict((n, evr(e)) for n, e in installed.items()),
                     locks=[entry for n in names for entry in locks.get(n, [])])


if __name__ == "__main__":
    main()
