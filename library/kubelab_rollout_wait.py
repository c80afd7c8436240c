#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: kubelab developers
# MIT License

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: kubelab_rollout_wait
short_description: Waits for Deployments to roll out and Services to have ready endpoints
description:
  - Polls the Kubernetes API until every Deployment in O(deployments) has rolled out by the rules of
    C(kubectl rollout status), then until every Service in O(services) has at least one ready endpoint.
  - A Deployment is rolled out when C(status.observedGeneration) has caught up with C(metadata.generation),
    C(status.updatedReplicas) has reached C(spec.replicas), no old replicas are left (C(status.replicas) equals
    C(status.updatedReplicas)) and every updated replica is available.
  - A Deployment whose C(Progressing) condition has the reason C(ProgressDeadlineExceeded) fails the task
    at once, without waiting for O(timeout). Conditions are only read once the controller has observed the
    current generation, as kubectl does.
  - Ready endpoints are read from the Service's EndpointSlices (C(discovery.k8s.io/v1), label
    C(kubernetes.io/service-name)); when that API is not served or has no slice for the Service, from its
    core/v1 Endpoints object.
  - When a wait fails, the message names what was expected and what was seen, and lists the state of the
    pods concerned and the most recent events about them.
  - The module only reads from the API. It never changes anything and always reports RV(ignore:changed=false);
    in check mode it does the same reads and waits.
version_added: "0.1.0"
author:
  - kubelab developers
options:
  kubeconfig:
    description:
      - Path of the kubeconfig file to use.
      - When not set, the client's defaults apply (E(KUBECONFIG), then C(~/.kube/config)).
    type: path
  context:
    description:
      - Context of the kubeconfig to use. Defaults to the file's current context.
    type: str
  namespace:
    description:
      - Namespace of the Deployments and Services.
    type: str
    required: true
  deployments:
    description:
      - Names of the Deployments to wait for.
    type: list
    elements: str
    default: []
  services:
    description:
      - Names of the Services that must have at least one ready endpoint.
      - Checked after the Deployments have rolled out.
    type: list
    elements: str
    default: []
  timeout:
    description:
      - Seconds to wait for all O(deployments) to roll out.
    type: int
    default: 300
  endpoints_timeout:
    description:
      - Seconds to wait, after the rollouts, for all O(services) to have a ready endpoint.
    type: int
    default: 120
  interval:
    description:
      - Seconds between two polls.
    type: float
    default: 2
  events:
    description:
      - How many of the most recent related events to put into a failure message.
    type: int
    default: 10
requirements:
  - kubernetes (the Python client) on the host that runs the module
notes:
  - "Run it where the kubeconfig is, usually the controller (C(delegate_to: localhost) or a play on localhost)."
  - Supports check mode; the module is read-only in any mode.
seealso:
  - module: kubernetes.core.k8s
  - module: ansible.builtin.wait_for
  - name: kubectl rollout status
    description: The rules this module follows for Deployments.
    link: https://kubernetes.io/docs/reference/kubectl/generated/kubectl_rollout/kubectl_rollout_status/
"""

EXAMPLES = r"""
- name: Wait for the test Deployments and Services
  kubelab_rollout_wait:
    kubeconfig: "{{ kubelab_admin_kubeconfig }}"
    namespace: test
    deployments: [nginx, busybox]
    services: [nginx-svc, nginx-svc-lb, nginx-svc-np]
    timeout: 300
    endpoints_timeout: 120

- name: Only check, with a short timeout, that nginx is rolled out
  kubelab_rollout_wait:
    kubeconfig: /srv/admin.conf
    namespace: test
    deployments: [nginx]
    timeout: 5
  check_mode: true
"""

RETURN = r"""
deployments:
  description: The last seen rollout state of each Deployment, by name.
  returned: always
  type: dict
  sample:
    nginx:
      state: complete
      message: deployment "nginx" successfully rolled out
      generation: 1
      observed_generation: 1
      replicas: 2
      status_replicas: 2
      updated_replicas: 2
      ready_replicas: 2
      available_replicas: 2
services:
  description: The last seen endpoints of each Service, by name.
  returned: always
  type: dict
  sample:
    nginx-svc:
      ready: true
      ready_addresses: [10.244.1.15, 10.244.2.14]
      not_ready_addresses: []
      source: EndpointSlice
      message: service "nginx-svc" has 2 ready endpoint(s) 10.244.1.15, 10.244.2.14
elapsed:
  description: Seconds spent waiting, in total.
  returned: always
  type: float
  sample: 12.5
pods:
  description: State of the pods of the Deployments or Services that failed the wait, one line per pod.
  returned: failed
  type: list
  elements: str
  sample: ["pod nginx-6c8cf466cd-mpfz4 phase=Pending node=w1 ready=0/1 container nginx: waiting ImagePullBackOff"]
events:
  description: The most recent events about the objects that failed the wait, oldest first.
  returned: failed
  type: list
  elements: str
  sample: ["2026-11-26T22:00:00Z Warning Pod/nginx-6c8cf466cd-mpfz4: Failed Back-off pulling image"]
"""

import json
import traceback
from time import monotonic, sleep

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible.module_utils.kubelab_rollout import (
    COMPLETE,
    FAILED,
    deployment_rollout,
    failure_report,
    pod_state,
    related_events,
    selector_string,
    service_endpoints,
)

KUBERNETES_IMPORT_ERROR = None
try:
    import kubernetes
    from kubernetes.client.rest import ApiException
except ImportError:
    KUBERNETES_IMPORT_ERROR = traceback.format_exc()
    ApiException = Exception


class NotFound(Exception):
    pass


class Api:
    """The few reads the module needs, returning the API's JSON as dicts."""

    def __init__(self, kubeconfig, context):
        self.client = kubernetes.config.new_client_from_config(config_file=kubeconfig, context=context)
        self.core = kubernetes.client.CoreV1Api(self.client)
        self.apps = kubernetes.client.AppsV1Api(self.client)
        self.discovery = kubernetes.client.DiscoveryV1Api(self.client)
        self.slices_served = True

    @staticmethod
    def _json(call, *args, **kwargs):
        try:
            response = call(*args, _preload_content=False, **kwargs)
        except ApiException as exc:
            if getattr(exc, "status", None) == 404:
                raise NotFound(str(getattr(exc, "reason", "") or "not found"))
            raise
        return json.loads(response.data or b"{}")

    def deployment(self, namespace, name):
        return self._json(self.apps.read_namespaced_deployment, name, namespace)

    def service(self, namespace, name):
        return self._json(self.core.read_namespaced_service, name, namespace)

    def pods(self, namespace, selector):
        return self._json(self.core.list_namespaced_pod, namespace, label_selector=selector).get("items") or []

    def events(self, namespace):
        return self._json(self.core.list_namespaced_event, namespace).get("items") or []

    def endpoint_slices(self, namespace, service):
        if not self.slices_served:
            return None
        try:
            data = self._json(
                self.discovery.list_namespaced_endpoint_slice,
                namespace,
                label_selector="kubernetes.io/service-name=%s" % service,
            )
        except NotFound:
            self.slices_served = False
            return None
        return data.get("items") or []

    def endpoints(self, namespace, service):
        try:
            return self._json(self.core.read_namespaced_endpoints, service, namespace)
        except NotFound:
            return None


def describe_api_error(exc):
    status = getattr(exc, "status", None)
    reason = getattr(exc, "reason", None)
    body = getattr(exc, "body", None)
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    try:
        body = json.loads(body).get("message", body)
    except (TypeError, ValueError, AttributeError):
        pass
    parts = [str(p) for p in (status, reason, body) if p]
    return " ".join(parts) if parts else str(exc)


class Waiter:
    def __init__(self, module, api, clock=None, sleeper=None):
        self.module = module
        self.api = api
        self.clock = clock or monotonic
        self.sleep = sleeper or sleep
        self.params = module.params
        self.namespace = module.params["namespace"]
        self.start = self.clock()
        self.deployments = {}
        self.services = {}

    def elapsed(self):
        return round(self.clock() - self.start, 2)

    def fail(self, msg, pods=None, events=None):
        self.module.fail_json(
            msg=msg,
            changed=False,
            deployments=self.deployments,
            services=self.services,
            elapsed=self.elapsed(),
            pods=pods or [],
            events=events or [],
        )

    def _context(self, selectors, names):
        pods = []
        seen = set()
        for selector in selectors:
            try:
                items = self.api.pods(self.namespace, selector)
            except Exception as exc:  # report what we can, not a traceback
                pods.append({"metadata": {"name": "(pods of %s unreadable: %s)" % (selector, describe_api_error(exc))}})
                continue
            for pod in items:
                key = (pod.get("metadata") or {}).get("name")
                if key not in seen:
                    seen.add(key)
                    pods.append(pod)
        try:
            events = related_events(self.api.events(self.namespace), names, self.params["events"])
        except Exception as exc:
            events = ["(events unreadable: %s)" % describe_api_error(exc)]
        return pods, events

    def _fail_with_context(self, headline, states, selectors, names):
        pods, events = self._context(selectors, names)
        pod_lines = [pod_state(p) for p in pods]
        self.fail(failure_report(headline, states, pods, events), pods=pod_lines, events=events)

    def _read(self, what, call, *args):
        try:
            return call(*args)
        except NotFound:
            self.fail(
                "%s %s/%s not found: expected it to exist (was it applied?)"
                % (what, self.namespace, args[-1])
            )
        except Exception as exc:
            self.fail(
                "Reading %s %s/%s from the API failed: %s"
                % (what, self.namespace, args[-1], describe_api_error(exc))
            )

    def wait_deployments(self):
        names = self.params["deployments"]
        if not names:
            return
        deadline = self.start + self.params["timeout"]
        selectors = {}
        while True:
            pending = []
            for name in names:
                obj = self._read("Deployment", self.api.deployment, self.namespace, name)
                match = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
                selectors[name] = selector_string(match)
                state = deployment_rollout(obj)
                self.deployments[name] = state
                if state["state"] == FAILED:
                    self._fail_with_context(
                        "Deployment %s/%s failed to roll out (fail fast, not waiting for the %ds timeout): %s"
                        % (self.namespace, name, self.params["timeout"], state["message"]),
                        [],
                        [selectors[name]],
                        [name],
                    )
                if state["state"] != COMPLETE:
                    pending.append(name)
            if not pending:
                return
            if self.clock() >= deadline:
                self._fail_with_context(
                    "Timed out after %ds waiting for Deployment(s) %s in namespace %s to roll out "
                    "(expected observedGeneration >= generation, updatedReplicas = availableReplicas "
                    "= replicas). Last seen:"
                    % (self.params["timeout"], ", ".join(pending), self.namespace),
                    [self.deployments[n]["message"] for n in pending],
                    [selectors[n] for n in pending if selectors.get(n)],
                    pending,
                )
            self.sleep(min(self.params["interval"], max(0.0, deadline - self.clock())))

    def wait_services(self):
        names = self.params["services"]
        if not names:
            return
        deadline = self.clock() + self.params["endpoints_timeout"]
        selectors = {}
        while True:
            pending = []
            for name in names:
                svc = self._read("Service", self.api.service, self.namespace, name)
                selectors[name] = selector_string((svc.get("spec") or {}).get("selector") or {})
                try:
                    slices = self.api.endpoint_slices(self.namespace, name)
                    endpoints = None
                    if not slices:
                        endpoints = self.api.endpoints(self.namespace, name)
                except Exception as exc:
                    self.fail(
                        "Reading the endpoints of Service %s/%s failed: %s"
                        % (self.namespace, name, describe_api_error(exc))
                    )
                state = service_endpoints(name, slices, endpoints)
                self.services[name] = state
                if not state["ready"]:
                    pending.append(name)
            if not pending:
                return
            if self.clock() >= deadline:
                self._fail_with_context(
                    "Timed out after %ds waiting for Service(s) %s in namespace %s to have a ready "
                    "endpoint (expected at least one ready address in the Service's EndpointSlices "
                    "or Endpoints). Last seen:"
                    % (self.params["endpoints_timeout"], ", ".join(pending), self.namespace),
                    [self.services[n]["message"] for n in pending],
                    sorted(set(selectors[n] for n in pending if selectors.get(n))),
                    pending,
                )
            self.sleep(min(self.params["interval"], max(0.0, deadline - self.clock())))

    def run(self):
        self.wait_deployments()
        self.wait_services()
        self.module.exit_json(
            changed=False,
            deployments=self.deployments,
            services=self.services,
            elapsed=self.elapsed(),
        )


def argument_spec():
    return dict(
        kubeconfig=dict(type="path"),
        context=dict(type="str"),
        namespace=dict(type="str", required=True),
        deployments=dict(type="list", elements="str", default=[]),
        services=dict(type="list", elements="str", default=[]),
        timeout=dict(type="int", default=300),
        endpoints_timeout=dict(type="int", default=120),
        interval=dict(type="float", default=2),
        events=dict(type="int", default=10),
    )


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    if KUBERNETES_IMPORT_ERROR:
        module.fail_json(msg=missing_required_lib("kubernetes"), exception=KUBERNETES_IMPORT_ERROR)
    for key in ("timeout", "endpoints_timeout", "events"):
        if module.params[key] < 0:
            module.fail_json(msg="%s must be 0 or more, got %d" % (key, module.params[key]))
    if module.params["interval"] <= 0:
        module.fail_json(msg="interval must be more than 0, got %s" % module.params["interval"])
    try:
        api = Api(module.params["kubeconfig"], module.params["context"])
    except Exception as exc:
        module.fail_json(
            msg="Cannot load the kubeconfig %s (context %s): %s"
            % (module.params["kubeconfig"] or "(client default)", module.params["context"] or "(current)", exc)
        )
    Waiter(module, api).run()


if __name__ == "__main__":
    main()
