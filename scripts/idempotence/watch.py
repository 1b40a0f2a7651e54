"""The watch set: what the gate snapshots after run 1 and compares after each repeat run.

It is the union of
- every path, unit, package, user, group and sysctl key that a run-1 task result named
  (the callback plugin extracts them: `dest`, `path`, `creates`, `name` of service/apt/user...);
- the role's declared extra state, `meta/idempotence.yml` (side effects no result names);
- the `--watch PATH` options of the command line.

`meta/idempotence.yml` (every key optional):

    paths: [/etc/foo.d]                 # files, trees or globs
    systemd_units: [foo.service]
    packages: [foo]
    sysctl: [net.ipv4.ip_forward]
    users: [foo]
    groups: [foo]
    ignore:                             # volatile state; each entry needs a reason
      - path: /var/lib/foo/cache
        reason: foo rewrites its cache on every start; not configuration

An ignore without a written reason is an error; every ignore is listed in the evidence.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from idempotence.records import NAMED_KINDS

DECLARATION = Path("meta") / "idempotence.yml"
# Declaration key -> watch-set kind.
DECLARED_KINDS = {
    "paths": "paths",
    "systemd_units": "units",
    "packages": "packages",
    "sysctl": "sysctl",
    "users": "users",
    "groups": "groups",
}
IGNORE_SUBJECTS = ("path", "unit", "package", "sysctl", "user", "group")


def _path_pattern(pattern: str) -> re.Pattern[str]:
    """A path pattern as idempotence_probe reads one: `*` and `?` within a name, `[...]`
    classes, `**` for any number of directories; matching the path or a directory above it."""
    out, index = [], 0
    while index < len(pattern):
        char = pattern[index]
        if pattern.startswith("**/", index):
            out.append("(?:.*/)?")
            index += 3
            continue
        if pattern.startswith("**", index):
            out.append(".*")
            index += 2
            continue
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = pattern.find("]", index + 1)
            if end == -1:
                out.append(re.escape(char))
            else:
                body = pattern[index + 1:end]
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append(f"[{body}]")
                index = end
        else:
            out.append(re.escape(char))
        index += 1
    return re.compile("".join(out) + "(?:/.*)?")


class DeclarationError(ValueError):
    """A role's meta/idempotence.yml is malformed; the message names the file and the key."""


@dataclass
class Ignore:
    subject: str  # path, unit, package, sysctl, user or group
    pattern: str
    reason: str
    source: str  # where it was declared (file, or "--ignore")

    def matches(self, subject: str, name: str) -> bool:
        if subject != self.subject:
            return False
        if subject != "path":
            return fnmatch.fnmatchcase(name, self.pattern)
        # A path pattern as the probe reads one; a directory also covers what lies under it.
        return _path_pattern(self.pattern.rstrip("/") or "/").fullmatch(name) is not None

    def to_json(self) -> dict[str, str]:
        return {self.subject: self.pattern, "reason": self.reason, "declared_in": self.source}


@dataclass
class Declaration:
    """A role's meta/idempotence.yml (empty when the role has none)."""

    extra: dict[str, list[str]] = field(default_factory=lambda: {k: [] for k in NAMED_KINDS})
    ignores: list[Ignore] = field(default_factory=list)
    source: str | None = None


def _strings(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise DeclarationError(f"{where}: expected a list of strings, got {value!r}")


def parse_ignores(entries: Any, source: str) -> list[Ignore]:
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise DeclarationError(f"{source}: 'ignore' must be a list of {{path|unit|...: , reason: }}")
    ignores = []
    for index, entry in enumerate(entries):
        where = f"{source}: ignore[{index}]"
        if not isinstance(entry, dict):
            raise DeclarationError(f"{where}: expected a mapping, got {entry!r}")
        subjects = [s for s in IGNORE_SUBJECTS if s in entry]
        unknown = sorted(set(entry) - set(IGNORE_SUBJECTS) - {"reason"})
        if unknown or len(subjects) != 1:
            raise DeclarationError(
                f"{where}: needs exactly one of {', '.join(IGNORE_SUBJECTS)} and a reason"
                + (f" (unknown keys: {', '.join(unknown)})" if unknown else "")
            )
        reason = entry.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise DeclarationError(
                f"{where}: ignoring {subjects[0]} {entry[subjects[0]]!r} needs a written "
                "'reason' (why this state is volatile and not the role's fault)"
            )
        pattern = entry[subjects[0]]
        if not isinstance(pattern, str) or not pattern:
            raise DeclarationError(f"{where}: {subjects[0]} must be a non-empty string")
        ignores.append(Ignore(subjects[0], pattern, reason.strip(), source))
    return ignores


def load_declaration(role_dir: Path, shown_as: str) -> Declaration:
    path = role_dir / DECLARATION
    if not path.is_file():
        return Declaration()
    source = f"{shown_as}/{DECLARATION}"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise DeclarationError(f"{source}: not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise DeclarationError(f"{source}: expected a mapping at the top")
    unknown = sorted(set(data) - set(DECLARED_KINDS) - {"ignore"})
    if unknown:
        raise DeclarationError(
            f"{source}: unknown keys {', '.join(unknown)}; "
            f"supported: {', '.join([*DECLARED_KINDS, 'ignore'])}"
        )
    declaration = Declaration(source=source)
    for key, kind in DECLARED_KINDS.items():
        declaration.extra[kind] = _strings(data.get(key), f"{source}: {key}")
    declaration.ignores = parse_ignores(data.get("ignore"), source)
    return declaration


def build_watch_set(
    named: dict[str, list[str]],
    declaration: Declaration,
    cli_paths: list[str],
    excluded_paths: list[str],
) -> dict[str, list[str]]:
    """The union of the three sources; `excluded_paths` (the gate's own snapshot directory)
    are never watched."""
    watch: dict[str, set[str]] = {kind: set(named.get(kind, [])) for kind in NAMED_KINDS}
    for kind, values in declaration.extra.items():
        watch[kind].update(values)
    watch["paths"].update(cli_paths)

    def own(path: str) -> bool:
        return any(path == e or path.startswith(e.rstrip("/") + "/") for e in excluded_paths)

    watch["paths"] = {p for p in watch["paths"] if not own(p)}
    return {kind: sorted(values) for kind, values in watch.items()}
