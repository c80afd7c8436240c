"""nodeagent: what the kubelet TEST DOUBLE does after registering its Node (see CONTRACT.md).

Pods bound to the node run through podrt, their status goes to the API, the
flannel host-gw routes are kept, the kube-proxy double syncs when its
DaemonSet exists, and exec/containerLogs are served over plain HTTP.
"""

from .agent import BackOff, NodeAgent, crio_default_capabilities  # noqa: F401
