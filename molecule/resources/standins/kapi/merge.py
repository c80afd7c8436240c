# TEST DOUBLE - used only by kubelab's molecule/resources and tests, never by the roles.
"""Patch semantics of the Kubernetes API, reduced to what kubectl and
kubernetes.core send: JSON merge patch (RFC 7386), JSON patch (RFC 6902,
through ``jsonpatch``) and a strategic merge patch that knows the merge keys
of the built-in types that a lab cluster uses.

Not a full implementation: merge keys come from a table instead of the
OpenAPI schema, ``$setElementOrder`` is ignored (order of the patch wins for
new elements, old elements keep their place).
"""

from __future__ import annotations

import copy
from typing import Any

# Field name -> merge key, from the patchMergeKey tags of k8s.io/api.
MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "imagePullSecrets": "name",
    "conditions": "type",
    "addresses": "type",
    "taints": "key",
    "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey",
    "ownerReferences": "uid",
}
# Lists of scalars with patchStrategy=merge (set union).
PRIMITIVE_MERGE = frozenset({"finalizers"})


def _merge_key(field: str, items: list[Any]) -> str | None:
    if field == "ports":  # ContainerPort vs ServicePort
        for item in items:
            if isinstance(item, dict) and "containerPort" in item:
                return "containerPort"
            if isinstance(item, dict) and "port" in item:
                return "port"
        return None
    return MERGE_KEYS.get(field)


def _strip_directives(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: _strip_directives(v)
            for k, v in value.items()
            if not k.startswith("$")
        }
    if isinstance(value, list):
        return [_strip_directives(v) for v in value]
    return value


def json_merge_patch(original: Any, patch: Any) -> Any:
    """RFC 7386: dicts merge recursively, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(original) if isinstance(original, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = json_merge_patch(result.get(key), value)
    return result


def strategic_merge_patch(original: Any, patch: Any) -> Any:
    """Apply a strategic merge patch as kubectl computes it for built-in types."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return _strip_directives(patch)
    result = copy.deepcopy(original) if isinstance(original, dict) else {}
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys") or key.startswith("$setElementOrder/"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            result[field] = [x for x in result.get(field) or [] if x not in value]
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            if value.get("$patch") == "delete":
                result.pop(key, None)
            else:
                result[key] = strategic_merge_patch(result.get(key), value)
        elif isinstance(value, list):
            result[key] = _merge_list(key, result.get(key), value)
        else:
            result[key] = value
    retain = patch.get("$retainKeys")
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    return result


def _merge_list(field: str, original: Any, patch: list[Any]) -> list[Any]:
    original = original if isinstance(original, list) else []
    if any(isinstance(x, dict) and x.get("$patch") == "replace" for x in patch):
        return [_strip_directives(x) for x in patch if not (isinstance(x, dict) and "$patch" in x)]
    if field in PRIMITIVE_MERGE:
        return copy.deepcopy(original) + [x for x in patch if x not in original]
    key = _merge_key(field, patch + original)
    if key is None:
        return _strip_directives(patch)
    result = copy.deepcopy(original)
    for item in patch:
        if not isinstance(item, dict) or key not in item:
            result.append(_strip_directives(item))
            continue
        index = next(
            (i for i, old in enumerate(result) if isinstance(old, dict) and old.get(key) == item[key]),
            None,
        )
        if item.get("$patch") == "delete":
            if index is not None:
                del result[index]
        elif index is None:
            result.append(_strip_directives(item))
        else:
            result[index] = strategic_merge_patch(result[index], item)
    return result


def apply_patch(original: Any, applied: Any, previous: Any) -> Any:
    """Server-side apply, simplified: merge ``applied`` strategically and drop
    the fields that this field manager applied last time (``previous``) but no
    longer applies. No conflict detection between managers."""
    result = strategic_merge_patch(original, applied)
    if isinstance(previous, dict):
        _prune(result, previous, applied)
    return result


def _prune(result: dict[str, Any], previous: dict[str, Any], applied: dict[str, Any]) -> None:
    for key, old in previous.items():
        if key not in applied:
            result.pop(key, None)
        elif isinstance(old, dict) and isinstance(applied[key], dict) and isinstance(result.get(key), dict):
            _prune(result[key], old, applied[key])
