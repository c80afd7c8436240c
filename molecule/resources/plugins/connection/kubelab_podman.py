# -*- coding: utf-8 -*-
# kubelab test-lab transport: containers.podman.podman with module pipelining.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connection plugin for the offline container lab only (never used by the
roles or on real nodes, which are reached over SSH with pipelining)."""

from __future__ import annotations

DOCUMENTATION = r"""
name: kubelab_podman
short_description: Run modules in kubelab's podman test nodes, one C(podman exec) per module
description:
  - The transport of kubelab's offline container lab (C(molecule/resources/)), a
    variant of C(containers.podman.podman).
  - C(containers.podman.podman) cannot pipeline because it runs C(podman exec)
    without C(--interactive), so the module source it writes on stdin never
    reaches Python. Every module then costs a C(podman mount), a C(podman exec)
    for the temporary directory, a file copy, a C(podman exec) for Python and one
    for the clean-up.
  - This plugin passes C(--interactive) whenever there is input, so with
    pipelining on a module is one C(podman exec). Files that action plugins
    transfer (C(copy), C(template)) go through C(podman cp); the container's
    file system is never mounted.
  - Real nodes are reached over SSH, where C(ansible.cfg) also pipelines; this
    plugin only makes the test lab's transport behave like that.
author: kubelab
options:
  remote_addr:
    description: The name or ID of the container.
    default: inventory_hostname
    vars:
      - name: ansible_host
      - name: inventory_hostname
      - name: ansible_podman_host
  remote_user:
    description: User to run commands as inside the container (default the container's user).
    ini:
      - section: defaults
        key: remote_user
    env:
      - name: ANSIBLE_REMOTE_USER
    vars:
      - name: ansible_user
  podman_extra_args:
    description: Extra arguments for every podman command.
    default: ''
    ini:
      - section: defaults
        key: podman_extra_args
    vars:
      - name: ansible_podman_extra_args
    env:
      - name: ANSIBLE_PODMAN_EXTRA_ARGS
  podman_executable:
    description: The podman executable.
    default: podman
    vars:
      - name: ansible_podman_executable
    env:
      - name: ANSIBLE_PODMAN_EXECUTABLE
  pipelining:
    description:
      - Send modules on stdin instead of copying them into the container.
    type: boolean
    default: true
    ini:
      - section: defaults
        key: pipelining
      - section: connection
        key: pipelining
    env:
      - name: ANSIBLE_PIPELINING
    vars:
      - name: ansible_pipelining
"""

import shlex

from ansible.errors import AnsibleConnectionFailure
from ansible.module_utils.common.text.converters import to_native
from ansible.plugins.connection import ensure_connect
from ansible_collections.containers.podman.plugins.connection.podman import Connection as PodmanConnection


class Connection(PodmanConnection):
    """containers.podman.podman with pipelining and without the mount."""

    transport = "kubelab_podman"
    has_pipelining = True

    def _connect(self):
        # No `podman mount` per task: files go through `podman cp`.
        if not self._connected:
            self._mount_point = None
            self._connected = True
        return self

    @ensure_connect
    def exec_command(self, cmd, in_data=None, sudoable=False):
        """Run CMD in the container; with IN_DATA, attach stdin (--interactive)."""
        # The grandparent's bookkeeping only (the parent would run podman itself).
        super(PodmanConnection, self).exec_command(cmd, in_data=in_data, sudoable=sudoable)
        args = ["exec"]
        if in_data is not None:
            args.append("--interactive")
        if self.user:
            args.extend(("--user", self.user))
        rc, stdout, stderr = self._podman(args, shlex.split(to_native(cmd, errors="surrogate_or_strict")), in_data)
        if rc == 125:
            # podman's own failure (no such container, not running): unreachable, not a task failure
            raise AnsibleConnectionFailure("podman exec into %s failed: %s" % (self._container_id, to_native(stderr).strip()))
        return rc, stdout, stderr
