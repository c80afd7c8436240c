"""podrt: a TEST DOUBLE pod runtime for kubelab's offline lab (see CONTRACT.md).

Not CRI-O, not runc: it starts a "pod" as real processes on one node (a
network namespace with a veth on the node's bridge, PID/mount/UTS namespaces,
the capability set CRI-O would give) and reports status shaped like the Pod
status the kubelet writes. Nothing in kubelab's roles uses it.
"""

from .caps import CAPABILITIES, CRIO_DEFAULT_CAPABILITIES, container_capabilities  # noqa: F401
from .routes import host_gw_routes  # noqa: F401
from .runtime import PodRuntime, PodRuntimeError  # noqa: F401
