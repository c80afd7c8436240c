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
  - The origin of every option is computed by reading O(config_path) (only when it exists: CRI-O 1.35's packages ship
    no C(/etc/crio/crio.conf)) and then every file below O(config_dir) in lexical order, the way crio does (a later
    file replaces the whole option).
  - With O(source=daemon) it also compares the daemon's values with those its files give now (RV(file_values)). crio
    reads its files only when it starts, so they differ after a file changed without a restart (RV(stale)); then it
    asks systemd and the journal when the daemon started and which files it read then (its own
    C(Updating config from drop-in file) lines), and RV(explain) says which holds what and that crio needs a restart.
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
    description:
      - CRI-O's main configuration file. Read only when it exists; C(crio config) is then run with C(--config PATH),
        otherwise with C(--config "") (crio refuses a C(--config) path that does not exist).
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
  unit:
    description: crio's systemd unit, asked (with the journal) when and from which files the daemon started.
    type: str
    default: crio.service
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
    cgroup_manager: built-in default
    pause_image: /etc/crio/crio.conf.d/10-crio.conf
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
  sample: [/etc/crio/crio.conf.d/10-crio.conf, /etc/crio/crio.conf.d/default_capabilities.conf]
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
file_values:
  description:
    - The values of RV(default_capabilities), RV(cgroup_manager) and RV(pause_image) that the files on disk give now
      (the last file setting each, else CRI-O 1.35's built-in value).
  returned: always
  type: dict
  sample: {"default_capabilities": [CHOWN, KILL, NET_RAW], "cgroup_manager": systemd,
           "pause_image": registry.k8s.io/pause:3.10.1}
stale:
  description:
    - With O(source=daemon), the names of those settings whose value in the running daemon differs from RV(file_values):
      the files changed since crio started and crio needs a restart to use them. Empty otherwise.
  returned: always
  type: list
  elements: str
  sample: [default_capabilities]
daemon:
  description:
    - With O(source=daemon) and RV(stale) not empty, what systemd and the journal say of the daemon's start
      (C(started), C(files) it read then, null when the journal does not tell). Null otherwise.
  returned: always
  type: dict
  sample: {"started": "Wed 2026-12-02 06:10:01 UTC", "files": [/etc/crio/crio.conf.d/10-crio.conf]}
explain:
  description:
    - For each reported setting, one sentence on where its effective value comes from. C(set by FILE) when daemon and
      files agree; otherwise which holds what (the daemon's value, when it started and what it read then; the files'
      value and the file that sets it) and that crio needs a restart.
  returned: always
  type: dict
  sample:
    default_capabilities: "set by /etc/crio/crio.conf.d/default_capabilities.conf"
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
    explain,
    file_values,
    files_from_daemon_log,
    headline,
    parse_crio_config_output,
    parse_toml,
    shadowing,
    stale_options,
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
    # crio refuses a --config path that does not exist (CRI-O 1.35 ships no
    # crio.conf); --config "" reads no main file, as the file list above.
    main_file = config_path if config_path and os.path.exists(config_path) else ""
    cmd = [crio, "--config", main_file, "--config-dir", config_dir, "config"]
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


def daemon_start(module, unit):
    """When the running daemon started and which files it read then (systemd and crio's own log lines)."""
    info = {"started": None, "files": None}
    systemctl = module.get_bin_path("systemctl")
    journalctl = module.get_bin_path("journalctl")
    if not systemctl:
        return info
    rc, out, _err = module.run_command([systemctl, "show", unit, "--property=InvocationID,ActiveEnterTimestamp"])
    if rc != 0:
        return info
    props = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    info["started"] = props.get("ActiveEnterTimestamp") or None
    invocation = props.get("InvocationID")
    if journalctl and invocation:
        rc, out, _err = module.run_command([journalctl, "--no-pager", "-o", "cat",
                                            "_SYSTEMD_INVOCATION_ID=%s" % invocation])
        if rc == 0:
            read = files_from_daemon_log(out)
            info["files"] = read if read or "Updating config from" in out else None
    return info


def main():
    module = AnsibleModule(
        argument_spec=dict(
            source=dict(type="str", default="daemon", choices=["daemon", "files", "none"]),
            config_path=dict(type="path", default="/etc/crio/crio.conf"),
            config_dir=dict(type="path", default="/etc/crio/crio.conf.d"),
            socket=dict(type="path", default="/var/run/crio/crio.sock"),
            crio_bin=dict(type="str", default="crio"),
            timeout=dict(type="int", default=30),
            unit=dict(type="str", default="crio.service"),
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
    files_now = file_values(parsed)
    stale = stale_options(values, files_now) if params["source"] == "daemon" else []
    daemon = daemon_start(module, params["unit"]) if stale else None
    explained = dict((name, explain(name, values[name], daemon, files_now[name], origin[name]))
                     for name in values if values[name] is not None)
    module.exit_json(
        file_values=files_now,
        stale=stale,
        daemon=daemon,
        explain=explained,
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
