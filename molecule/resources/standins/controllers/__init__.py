# TEST DOUBLE - used only by kubelab's molecule/resources and tests, never by the roles.
"""Controllers stand-in: Deployment, ReplicaSet, scheduler, Endpoints/EndpointSlice, GC (see CONTRACT.md)."""
