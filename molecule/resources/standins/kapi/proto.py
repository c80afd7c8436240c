# TEST DOUBLE - used only by kubelab's molecule/resources and tests, never by the roles.
"""Decode the few protobuf request bodies that kubectl's typed commands send
(``kubectl create namespace|configmap|secret|serviceaccount``). Only the
fields those commands set are known; anything else is refused."""

from __future__ import annotations

import base64
from typing import Any

MAGIC = b"k8s\x00"


class ProtoError(ValueError):
    pass


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ProtoError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def fields(buf: bytes) -> list[tuple[int, int | bytes]]:
    """(field number, value) pairs; value is int (varint) or bytes (length-delimited)."""
    out: list[tuple[int, int | bytes]] = []
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
            out.append((number, value))
        elif wire == 2:
            length, pos = _varint(buf, pos)
            out.append((number, buf[pos:pos + length]))
            pos += length
        elif wire == 5:
            pos += 4
        elif wire == 1:
            pos += 8
        else:
            raise ProtoError(f"unsupported wire type {wire}")
    return out


def _map(entries: list[bytes], binary: bool = False) -> dict[str, str]:
    result = {}
    for entry in entries:
        kv = dict(fields(entry))
        value = kv.get(2, b"")
        result[kv.get(1, b"").decode()] = base64.b64encode(value).decode() if binary else value.decode()
    return result


def _meta(buf: bytes) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    labels, annotations = [], []
    for number, value in fields(buf):
        if number in (1, 2, 3) and value:  # generated protobuf writes "" for unset strings
            meta[{1: "name", 2: "generateName", 3: "namespace"}[number]] = value.decode()
        elif number == 11:
            labels.append(value)
        elif number == 12:
            annotations.append(value)
    if labels:
        meta["labels"] = _map(labels)
    if annotations:
        meta["annotations"] = _map(annotations)
    return meta


def decode(body: bytes) -> dict[str, Any]:
    if not body.startswith(MAGIC):
        raise ProtoError("not a Kubernetes protobuf message")
    envelope = dict(fields(body[len(MAGIC):]))
    type_meta = dict(fields(envelope.get(1, b"")))
    api_version, kind = type_meta.get(1, b"").decode(), type_meta.get(2, b"").decode()
    obj: dict[str, Any] = {"apiVersion": api_version, "kind": kind}
    raw = fields(envelope.get(2, b""))
    groups: dict[int, list[Any]] = {}
    for number, value in raw:
        groups.setdefault(number, []).append(value)
    if 1 in groups:
        obj["metadata"] = _meta(groups.pop(1)[0])
    if (api_version, kind) == ("v1", "Namespace"):
        groups.pop(2, None)  # spec.finalizers: set by the server anyway
        groups.pop(3, None)  # status: server-owned
    elif (api_version, kind) == ("v1", "ConfigMap"):
        if 2 in groups:
            obj["data"] = _map(groups.pop(2))
        if 3 in groups:
            obj["binaryData"] = _map(groups.pop(3), binary=True)
    elif (api_version, kind) == ("v1", "Secret"):
        if 2 in groups:
            obj["data"] = _map(groups.pop(2), binary=True)
        if 3 in groups:
            obj["type"] = groups.pop(3)[0].decode() or "Opaque"
    elif (api_version, kind) == ("v1", "ServiceAccount"):
        pass
    else:
        raise ProtoError(f"protobuf bodies of {api_version} {kind} are not supported by this test double (send JSON)")
    groups = {n: v for n, v in groups.items() if any(x not in (b"", 0) for x in v)}  # empty messages
    if groups:
        raise ProtoError(f"unsupported fields {sorted(groups)} in a protobuf {kind} (send JSON)")
    return obj
