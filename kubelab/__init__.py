"""kubelab: a command-line front end over the kubelab playbooks (ansible-runner)."""

__all__ = ["__version__"]
__version__ = "0.1.0"
