"""Add a worker to an inventory YAML file, keeping its comments and layout
(ruamel.yaml round trip). Refusals change nothing: with a ``check``, the
edited inventory is validated as a copy before the file is written."""

from __future__ import annotations

import io
import ipaddress
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap

from kubelab.errors import KubelabError

_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", re.IGNORECASE)
ADDRESS_KEYS = ("ansible_host", "kubelab_node_ip")


def inventory_file(path: Path) -> Path:
    """The YAML file to edit: the path itself, or hosts.yml in a directory."""
    if path.is_dir():
        for name in ("hosts.yml", "hosts.yaml"):
            if (path / name).is_file():
                return path / name
        raise KubelabError(f"The inventory directory {path} has no hosts.yml to add the worker to.")
    if not path.is_file():
        raise KubelabError(f"The inventory file {path} does not exist.")
    if path.suffix not in (".yml", ".yaml"):
        raise KubelabError(f"The inventory {path} is not a YAML file; add-worker edits YAML inventories only.")
    return path


def check_name(name: str) -> None:
    if len(name) > 253 or not all(_LABEL.match(label) for label in name.split(".")):
        raise KubelabError(
            f"'{name}' is not a valid host name (letters, digits and '-', dot-separated labels)."
        )


def check_address(address: str) -> str:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise KubelabError(f"'{address}' is not an IP address.") from None
    if ip.is_unspecified or ip.is_loopback or ip.is_multicast or ip.is_link_local:
        raise KubelabError(f"{address} cannot be a node address (unspecified, loopback, multicast or link-local).")
    return str(ip)


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096
    return yaml


def _groups(group: object, name: str = "all") -> Iterator[tuple[str, dict]]:
    if not isinstance(group, dict):
        return
    yield name, group
    children = group.get("children")
    if isinstance(children, dict):
        for child, body in children.items():
            yield from _groups(body if body is not None else {}, str(child))


def _hosts(data: dict) -> Iterator[tuple[str, dict]]:
    for top, body in data.items():
        for _group, group in _groups(body, str(top)):
            hosts = group.get("hosts")
            if isinstance(hosts, dict):
                for host, hostvars in hosts.items():
                    yield str(host), hostvars if isinstance(hostvars, dict) else {}


def _find_group(data: dict, group: str) -> dict | None:
    """The group's mapping; an empty group (`workers:` with no value) is
    given an empty mapping in place so hosts can be added to it."""
    for top, body in data.items():
        if top == group and isinstance(body, dict):
            return body
        for _name, found in _groups(body, str(top)):
            children = found.get("children")
            if isinstance(children, dict) and group in children:
                if children[group] is None:
                    children[group] = CommentedMap()
                if isinstance(children[group], dict):
                    return children[group]
    return None


def add_worker(path: Path, name: str, address: str, group: str = "workers",
               check: Callable[[Path], list[str]] | None = None) -> Path:
    """Add NAME with ansible_host and kubelab_node_ip = ADDRESS under GROUP.
    Returns the file written. Raises KubelabError (file untouched) when the
    name or address is invalid or already used, or when CHECK (given the
    inventory as Ansible is to read it: a copy holding the edit) returns
    problems."""
    given = path
    path = inventory_file(path)
    check_name(name)
    address = check_address(address)
    yaml = _yaml()
    original = path.read_text(encoding="utf-8")
    yaml.explicit_start = bool(re.match(r"(\s*#[^\n]*\n)*\s*---", original))
    try:
        data = yaml.load(original)
    except Exception as exc:  # ruamel raises many error types
        raise KubelabError(f"The inventory {path} is not valid YAML: {str(exc).splitlines()[0]}.") from None
    if not isinstance(data, dict):
        raise KubelabError(f"The inventory {path} is not an Ansible YAML inventory (no top-level mapping).")
    for host, hostvars in _hosts(data):
        if host == name:
            raise KubelabError(f"The inventory already has a host named {name}; nothing was changed.")
        for key in ADDRESS_KEYS:
            value = hostvars.get(key)
            if value is None:
                continue
            try:
                same = ipaddress.ip_address(str(value)) == ipaddress.ip_address(address)
            except ValueError:
                same = str(value) == address
            if same:
                raise KubelabError(
                    f"Address {address} is already used by host {host} ({key}); nothing was changed."
                )
    target = _find_group(data, group)
    if target is None:
        raise KubelabError(f"The inventory {path} has no '{group}' group to add the worker to; nothing was changed.")
    hosts = target.get("hosts")
    if hosts is None:
        hosts = CommentedMap()
        target["hosts"] = hosts
    elif not isinstance(hosts, dict):
        raise KubelabError(f"The '{group}' group's hosts in {path} is not a mapping; nothing was changed.")
    hostvars = CommentedMap()
    hostvars["ansible_host"] = address
    hostvars["kubelab_node_ip"] = address
    hosts[name] = hostvars
    buffer = io.StringIO()
    yaml.dump(data, buffer)
    text = buffer.getvalue()
    if check is not None:
        problems = checked_copy(given, path, text, check)
        if problems:
            raise KubelabError(
                f"Adding {name} ({address}) would leave the inventory with {len(problems)} "
                f"problem{'s' if len(problems) != 1 else ''}; nothing was changed in {path}:\n"
                + "\n".join(f"  - {p}" for p in problems)
            )
    _write_atomic(path, text)
    return path


def checked_copy(given: Path, path: Path, text: str, check: Callable[[Path], list[str]]) -> list[str]:
    """CHECK's problems with the inventory GIVEN (a file or a directory) whose
    file PATH holds TEXT, run on a temporary copy (a directory inventory
    whole; a file with the group_vars/ and host_vars/ beside it), so the real
    file changes only once the edit is valid. The copy's path is reported as
    the real one."""
    with tempfile.TemporaryDirectory(prefix="kubelab-add-worker.") as tmp:
        if given.is_dir():
            target = Path(tmp) / given.name
            shutil.copytree(given, target, symlinks=True)
            (target / path.relative_to(given)).write_text(text, encoding="utf-8")
        else:
            folder = Path(tmp) / "inventory"
            folder.mkdir()
            for sub in ("group_vars", "host_vars"):
                if (path.parent / sub).is_dir():
                    shutil.copytree(path.parent / sub, folder / sub, symlinks=True)
            target = folder / path.name
            target.write_text(text, encoding="utf-8")
        try:
            problems = list(check(target))
        except KubelabError as exc:
            raise KubelabError(f"{str(exc).replace(str(target), str(given))} (with the new host; nothing was "
                               f"changed)") from None
        return [p.replace(str(target), str(given)) for p in problems]


def _write_atomic(path: Path, text: str) -> None:
    mode = path.stat().st_mode & 0o7777
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
