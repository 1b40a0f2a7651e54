"""Reading the callback plugin's records (one JSON object per task result and host)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

NAMED_KINDS = ("paths", "units", "packages", "users", "groups", "sysctl")


@dataclass
class RunRecords:
    """The task results of one ansible-playbook run."""

    records: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path) -> "RunRecords":
        records = []
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                line = line.strip()
                if line:
                    records.append(json.loads(line))
        return cls(records)

    def hosts(self) -> list[str]:
        return sorted({r["host"] for r in self.records})

    def changed(self) -> list[dict[str, Any]]:
        return [r for r in self.records if r.get("changed")]

    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.records if r.get("outcome") in ("failed", "unreachable")]

    def named_state(self, host: str) -> dict[str, list[str]]:
        """The union of the state every task named on `host`."""
        named: dict[str, set[str]] = {kind: set() for kind in NAMED_KINDS}
        for record in self.records:
            if record["host"] != host:
                continue
            for kind, values in (record.get("named") or {}).items():
                if kind in named:
                    named[kind].update(values)
        return {kind: sorted(values) for kind, values in named.items()}

    def probe_results(self) -> dict[str, dict[str, Any]]:
        """host -> the idempotence_probe result of that host (the last one if several)."""
        results = {}
        for record in self.records:
            if "probe" in record:
                results[record["host"]] = {**record["probe"], "_outcome": record["outcome"]}
        return results


def task_summary(record: dict[str, Any], repo_root: Path) -> dict[str, Any]:
    """What the evidence says about one task result: role, task, file:line, host, handler."""
    location = record.get("path") or ""
    root = f"{repo_root}/"
    if location.startswith(root):
        location = location[len(root):]
    summary = {
        "role": record.get("role"),
        "task": record.get("task"),
        "location": location,
        "host": record.get("host"),
        "action": record.get("action"),
        "handler": bool(record.get("handler")),
    }
    if record.get("changed_items"):
        summary["changed_items"] = record["changed_items"]
    return summary
