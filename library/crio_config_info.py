#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: kubelab developers
# MIT License

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: crio_config_info
short_description: Report CRI-O's effective runtime settings and which file set each one
description:
  - Returns CRI-O's effective default capabilities, cgroup manager and pause image, as crio itself reports them,
    and for each of them the configuration file that set it.
  - With O(source=daemon) the values come from the running daemon (C(crio status config), through its socket), which is
    what new containers get. With O(source=files) they come from C(crio config), the merge of the files on disk now (which
    the daemon only uses after a restart). With O(source=none) crio is not run at all (for example before it is
    installed) and only the files are read.
  - The origin of every option is computed by reading C(/etc/crio/crio.conf) and then every file below
    C(/etc/crio/crio.conf.d) in lexical order, the way crio does (a later file replaces the whole option).
  - With O(dropin) and O(options) it also reports which files read after that drop-in set the same options
    (RV(shadowed)); such a file would override the drop-in.
  - Inspect-only; never changes anything.
version_added: "0.1.0"
author: kubelab developers
options:
  source:
    description:
      - Where the effective values come from.
      - V(daemon) asks the running crio (C(crio status config)); waits up to O(timeout) seconds for it to answer.
      - V(files) runs C(crio config) (the files merged, defaults included).
      - V(none) runs no crio command; RV(default_capabilities), RV(cgroup_manager), RV(pause_image) and RV(config) are
        null.
    type: str
    choices: [daemon, files, none]
    default: daemon
  config_path:
    description: CRI-O's main configuration file.
    type: path
    default: /etc/crio/crio.conf
  config_dir:
    description: CRI-O's drop-in directory.
    type: path
    default: /etc/crio/crio.conf.d
  socket:
    description: CRI-O's socket, for O(source=daemon).
    type: path
    default: /var/run/crio/crio.sock
  crio_bin:
    description: The crio command. Looked up in C(PATH) when not absolute.
    type: str
    default: crio
  timeout:
    description: Seconds to wait for the daemon to answer with O(source=daemon) (it may still be starting).
    type: int
    default: 30
  dropin:
    description:
      - File name (in O(config_dir)) or path of a drop-in kubelab manages. Used with O(options) to find later files
        that override it. The drop-in need not exist yet.
    type: str
  options:
    description:
      - Dotted option names (for example C(crio.runtime.default_capabilities)) the O(dropin) sets.
    type: list
    elements: str
    default: []
notes:
  - Supports check mode; it runs the same read-only commands in check mode.
  - Needs no TOML library on the node (uses C(tomllib) when the node's Python has it).
seealso:
  - name: crio.conf.d(5)
    description: CRI-O's drop-in directory and its precedence rules.
    link: https://github.com/cri-o/cri-o/blob/main/docs/crio.conf.d.5.md
"""

EXAMPLES = r"""
- name: Read what the running crio uses
  crio_config_info:
  register: crio_effective

- name: NET_RAW must be in the running daemon's default capabilities
  ansible.builtin.assert:
    that: "'NET_RAW' in crio_effective.default_capabilities"
    fail_msg: "crio reports {{ crio_effective.default_capabilities }} (set by {{ crio_effective.origin.default_capabilities }})"

- name: Before writing a drop-in, find later drop-ins that would override it
  crio_config_info:
    source: none
    dropin: default_capabilities.conf
    options: [crio.runtime.default_capabilities]
  register: crio_files

- name: Fail when a later drop-in wins
  ansible.builtin.fail:
    msg: "{{ crio_files.shadowed }}"
  when: crio_files.shadowed | length > 0
"""

RETURN = r"""
source:
  description: Where the effective values came from (V(daemon), V(files) or V(none)).
  returned: always
  type: str
  sample: daemon
default_capabilities:
  description: Effective default capabilities (names without C(CAP_)). Null with O(source=none).
  returned: always
  type: list
  elements: str
  sample: [CHOWN, DAC_OVERRIDE, FSETID, FOWNER, SETGID, SETUID, SETPCAP, NET_BIND_SERVICE, KILL, NET_RAW]
cgroup_manager:
  description: Effective cgroup manager. Null with O(source=none).
  returned: always
  type: str
  sample: systemd
pause_image:
  description: Effective pause (infra container) image. Null with O(source=none).
  returned: always
  type: str
  sample: registry.k8s.io/pause:3.10
origin:
  description:
    - For each reported setting, the file that set it last, or C(built-in default) when no file sets it.
  returned: always
  type: dict
  sample:
    default_capabilities: /etc/crio/crio.conf.d/default_capabilities.conf
    cgroup_manager: /etc/crio/crio.conf
    pause_image: built-in default
origins:
  description: Every option set by some file (dotted name) and the file that set it last.
  returned: always
  type: dict
  sample: {"crio.runtime.default_capabilities": /etc/crio/crio.conf.d/default_capabilities.conf}
files:
  description: The configuration files in the order crio reads them.
  returned: always
  type: list
  elements: str
  sample: [/etc/crio/crio.conf, /etc/crio/crio.conf.d/10-crio.conf, /etc/crio/crio.conf.d/default_capabilities.conf]
checksums:
  description: SHA-1 of each file in RV(files) (lets a caller skip rewriting a file that is already right).
  returned: always
  type: dict
  sample: {/etc/crio/crio.conf.d/default_capabilities.conf: 3f786850e387550fdab836ed7e6dc881de23001b}
file_errors:
  description: Files that could not be read as TOML (crio would refuse them), with the reason.
  returned: always
  type: list
  elements: dict
  sample: [{"path": /etc/crio/crio.conf.d/bad.conf, "error": "line 2: expected '=' after key"}]
shadowed:
  description:
    - For each of O(options) that a file read after O(dropin) also sets, the list of those files. Empty when
      nothing overrides the drop-in.
  returned: always
  type: dict
  sample: {"crio.runtime.default_capabilities": [/etc/crio/crio.conf.d/99-local.conf]}
config:
  description: The whole effective configuration as crio reported it (parsed). Null with O(source=none).
  returned: always
  type: dict
"""

import hashlib
import os
import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native
from ansible.module_utils.kubelab_crio import (
    TomlError,
    compute_origins,
    config_files,
    headline,
    parse_crio_config_output,
    parse_toml,
    shadowing,
)


def read_files(config_path, config_dir):
    parsed = []
    errors = []
    checksums = {}
    for path in config_files(config_path, config_dir):
        try:
            with open(path, "rb") as handle:
                data = handle.read()
            checksums[path] = hashlib.sha1(data).hexdigest()
            parsed.append((path, parse_toml(data.decode("utf-8"))))
        except (IOError, OSError, UnicodeDecodeError, TomlError) as exc:
            errors.append({"path": path, "error": to_native(exc)})
            parsed.append((path, {}))
    return parsed, errors, checksums


def effective_from_daemon(module, crio, socket, timeout):
    cmd = [crio, "status", "--socket", socket, "config"]
    deadline = time.time() + max(timeout, 0)
    while True:
        rc, out, err = module.run_command(cmd)
        if rc == 0:
            break
        if time.time() >= deadline:
            module.fail_json(
                msg="crio did not report its effective configuration: `%s` exited %d within %ds: %s"
                    % (" ".join(cmd), rc, timeout, (err or out).strip()),
                rc=rc, stdout=out, stderr=err, cmd=cmd)
        time.sleep(1)
    try:
        return parse_toml(out)
    except TomlError as exc:
        module.fail_json(msg="cannot parse the output of `%s`: %s" % (" ".join(cmd), to_native(exc)),
                         stdout=out, cmd=cmd)


def effective_from_files(module, crio, config_path, config_dir):
    cmd = [crio, "--config", config_path, "--config-dir", config_dir, "config"]
    rc, out, err = module.run_command(cmd)
    if rc != 0:
        module.fail_json(msg="`%s` exited %d: crio refuses its configuration files: %s"
                             % (" ".join(cmd), rc, (err or out).strip()),
                         rc=rc, stdout=out, stderr=err, cmd=cmd)
    try:
        return parse_crio_config_output(out)
    except TomlError as exc:
        module.fail_json(msg="cannot parse the output of `%s`: %s" % (" ".join(cmd), to_native(exc)),
                         stdout=out, cmd=cmd)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            source=dict(type="str", default="daemon", choices=["daemon", "files", "none"]),
            config_path=dict(type="path", default="/etc/crio/crio.conf"),
            config_dir=dict(type="path", default="/etc/crio/crio.conf.d"),
            socket=dict(type="path", default="/var/run/crio/crio.sock"),
            crio_bin=dict(type="str", default="crio"),
            timeout=dict(type="int", default=30),
            dropin=dict(type="str"),
            options=dict(type="list", elements="str", default=[]),
        ),
        supports_check_mode=True,
    )
    params = module.params
    parsed, errors, checksums = read_files(params["config_path"], params["config_dir"])
    origins = compute_origins(parsed)

    shadowed = {}
    if params["dropin"]:
        dropin = params["dropin"]
        if not os.path.isabs(dropin):
            dropin = os.path.join(params["config_dir"], dropin)
        shadowed = shadowing(parsed, dropin, params["options"])

    effective = None
    if params["source"] != "none":
        crio = params["crio_bin"]
        if not os.path.isabs(crio):
            crio = module.get_bin_path(crio, required=True)
        if params["source"] == "daemon":
            effective = effective_from_daemon(module, crio, params["socket"], params["timeout"])
        else:
            effective = effective_from_files(module, crio, params["config_path"], params["config_dir"])

    values, origin = headline(effective, origins)
    module.exit_json(
        changed=False,
        source=params["source"],
        origin=origin,
        origins=origins,
        files=[path for path, _data in parsed],
        checksums=checksums,
        file_errors=errors,
        shadowed=shadowed,
        config=effective,
        **values
    )


if __name__ == "__main__":
    main()
