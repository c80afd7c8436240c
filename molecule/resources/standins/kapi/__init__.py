# TEST DOUBLE - used only by kubelab's molecule/resources and tests, never by the roles.
"""kapi: a Kubernetes API emulator for kubelab's tests (kmock + a small adapter)."""

from .server import ApiError, KapiServer

__all__ = ["ApiError", "KapiServer"]
