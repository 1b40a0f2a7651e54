"""The gate's evidence: `<role>.json` per role, `summary.json`, `summary.md`, and the fault
history (`history.json`, rendered as `history.md`). Every file is written to a temp file
beside it and renamed into place: a reader sees the old or the new version, never half.
The schema is documented in docs/idempotence-gate.md."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import subprocess
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from idempotence import SCHEMA_VERSION
from idempotence.ansible import REPO_ROOT
from idempotence.gate import RoleResult, slug


def atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def git_commit() -> str | None:
    proc = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True
    )
    return proc.stdout.strip() if proc.returncode == 0 else None


def git_dirty(paths: list[str]) -> bool:
    proc = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--", *paths],
        capture_output=True, text=True,
    )
    return bool(proc.stdout.strip())


def probe_identity() -> dict[str, Any]:
    """Which idempotence_probe binary judged: its path and sha256."""
    from idempotence.ansible import PROBE_LIBRARY

    binary = PROBE_LIBRARY / "idempotence_probe"
    digest = hashlib.sha256()
    try:
        with open(binary, "rb") as source:
            for chunk in iter(lambda: source.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as error:
        return {"path": str(binary), "error": str(error)}
    return {"path": str(binary), "sha256": digest.hexdigest()}


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def finding_keys(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Stable keys of a role's findings (for baselines and the history): `task <file:line>
    <name>` and `drift <subject> <kind>`."""
    keys = {}
    for task in result.get("changed_tasks", []):
        keys[f"task {task['location']} {task['task']}"] = {"kind": "changed task", **task}
    for entry in result.get("drift", []):
        subject = next((f"{k} {entry[k]}" for k in ("path", "unit", "package", "sysctl", "user", "group")
                        if entry.get(k) is not None), "state")
        keys[f"drift {subject} {entry.get('kind')}"] = {"kind": "drift", **entry}
    return keys


def role_document(result: RoleResult, commit: str | None, dirty: bool, options: dict[str, Any]) -> dict[str, Any]:
    doc = {"schema_version": SCHEMA_VERSION, "generated_at": now(), "git_commit": commit,
           "git_dirty": dirty, "options": options}
    doc.update(asdict(result))
    return doc


def summary_row(doc: dict[str, Any]) -> dict[str, Any]:
    return {
        "role": doc["role"],
        "verdict": doc["verdict"],
        "duration_s": doc["duration_s"],
        "hosts": doc["hosts"],
        "changed_tasks": [
            {"task": t["task"], "location": t["location"], "hosts": t["hosts"], "runs": t["runs"],
             **({"environment_specific": t["environment_specific"]} if "environment_specific" in t else {})}
            for t in doc["changed_tasks"]
        ],
        "drift": [
            {k: v for k, v in d.items() if k in ("path", "unit", "package", "sysctl", "user", "group",
                                                  "kind", "hosts", "runs", "environment_specific")}
            for d in doc["drift"]
        ],
        "ignored": len(doc["ignored_drift"]),
        "ignores": doc["ignores"],
        "errors": [e.splitlines()[0] for e in doc["errors"]],
        "evidence": f"{slug(doc['role'])}.json",
    }


def compare_with_baseline(rows: list[dict[str, Any]], baseline: dict[str, Any]) -> dict[str, Any]:
    """New and fixed findings against an earlier summary.json (roles in both only)."""
    before = {row["role"]: row for row in baseline.get("roles", [])}
    new, fixed = [], []
    for row in rows:
        old = before.get(row["role"])
        if old is None:
            continue
        now_keys, old_keys = finding_keys(row), finding_keys(old)
        new += [{"role": row["role"], "finding": k} for k in sorted(set(now_keys) - set(old_keys))]
        fixed += [{"role": row["role"], "finding": k} for k in sorted(set(old_keys) - set(now_keys))]
        if old["verdict"] != row["verdict"]:
            pass
    return {"new": new, "fixed": fixed, "roles_compared": sorted(set(before) & {r["role"] for r in rows})}


def write_summary(directory: Path, rows: list[dict[str, Any]], meta: dict[str, Any]) -> dict[str, Any]:
    summary = {
        "schema_version": SCHEMA_VERSION,
        **meta,
        "roles_total": len(rows),
        "roles_idempotent": sum(r["verdict"] == "idempotent" for r in rows),
        "roles_not_idempotent": sum(r["verdict"] == "not idempotent" for r in rows),
        "roles_error": sum(r["verdict"] == "error" for r in rows),
        "roles": rows,
    }
    atomic_write(directory / "summary.json", json.dumps(summary, indent=2, sort_keys=True) + "\n")
    atomic_write(directory / "summary.md", render_summary_md(summary))
    return summary


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_summary_md(summary: dict[str, Any]) -> str:
    lines = [
        "# Idempotence gate: summary",
        "",
        f"Generated {summary.get('generated_at')} at commit `{(summary.get('git_commit') or '?')[:12]}`"
        f"{' (with uncommitted changes)' if summary.get('git_dirty') else ''}; "
        f"{summary.get('runs')} runs per role; target: {summary.get('target')}.",
        "",
        f"**{summary['roles_idempotent']}/{summary['roles_total']} roles idempotent**"
        f" ({summary['roles_not_idempotent']} not idempotent, {summary['roles_error']} errors).",
        "",
        "| Role | Verdict | Changed on a repeat run | Drift | Ignored (with reason) | Time |",
        "|---|---|---|---|---|---|",
    ]
    for row in summary["roles"]:
        tasks = "<br>".join(
            _cell(f"`{t['location']}` {t['task']}" + (f" (only {', '.join(t['environment_specific'])})"
                                                     if t.get("environment_specific") else ""))
            for t in row["changed_tasks"]
        ) or "none"
        drift = "<br>".join(
            _cell(f"{d.get('kind')}: `{next((d[k] for k in ('path', 'unit', 'package', 'sysctl', 'user', 'group') if d.get(k) is not None), '?')}`"
                  + (f" (only {', '.join(d['environment_specific'])})" if d.get("environment_specific") else ""))
            for d in row["drift"]
        ) or "none"
        if row["errors"]:
            drift += "<br>error: " + _cell(row["errors"][0])
        lines.append(
            f"| {row['role']} | {row['verdict']} | {tasks} | {drift} | {row['ignored']} | {row['duration_s']:.1f} s |"
        )
    ignores = [(row["role"], ig) for row in summary["roles"] for ig in row["ignores"]]
    lines += ["", "## Declared ignores", ""]
    if ignores:
        for role, ig in ignores:
            subject = next((f"{k} `{ig[k]}`" for k in ig if k not in ("reason", "declared_in")), "?")
            lines.append(f"- {role}: {subject}: {ig['reason']} ({ig['declared_in']})")
    else:
        lines.append("None: nothing was ignored.")
    baseline = summary.get("baseline")
    if baseline:
        lines += ["", f"## Against the baseline {baseline.get('file')}", ""]
        for label in ("new", "fixed"):
            items = baseline.get(label) or []
            lines.append(f"- {label}: " + (", ".join(f"{i['role']}: {i['finding']}" for i in items) or "none"))
    return "\n".join(lines) + "\n"


def update_history(directory: Path, rows: list[dict[str, Any]], commit: str | None) -> None:
    """Every non-idempotent task or drift ever found, the commit where it was found and, once a
    later run of the same role no longer finds it, the commit that fixed it."""
    path = directory / "history.json"
    history = json.loads(path.read_text()) if path.is_file() else {"schema_version": SCHEMA_VERSION, "findings": []}
    findings = history["findings"]
    open_by_key = {(f["role"], f["finding"]): f for f in findings if f.get("fixed_in") is None}
    stamp = now()
    for row in rows:
        if row["verdict"] == "error":
            continue  # an error proves neither a fault nor a fix
        current = finding_keys(row)
        for key, detail in current.items():
            if (row["role"], key) not in open_by_key:
                entry = {
                    "role": row["role"], "finding": key, "found_in": commit, "found_at": stamp,
                    "fixed_in": None, "fixed_at": None,
                    "detail": {k: v for k, v in detail.items() if k not in ("hosts", "runs")},
                    "hosts": detail.get("hosts", []),
                    "environment_specific": detail.get("environment_specific"),
                }
                findings.append(entry)
                open_by_key[(row["role"], key)] = entry
        for (role, key), entry in list(open_by_key.items()):
            if role == row["role"] and key not in current:
                entry["fixed_in"], entry["fixed_at"] = commit, stamp
                del open_by_key[(role, key)]
    atomic_write(path, json.dumps(history, indent=2, sort_keys=True) + "\n")
    atomic_write(directory / "history.md", render_history_md(history))


def render_history_md(history: dict[str, Any]) -> str:
    lines = [
        "# Idempotence gate: fault history",
        "",
        "Every non-idempotent task or state drift the gate has found on these roles, with the",
        "commit it was found at and the commit at which the gate no longer found it (the",
        "remediation). Written by scripts/verify_idempotence.sh from history.json.",
        "",
        "| Role | Finding | Found at | Fixed at | Only on |",
        "|---|---|---|---|---|",
    ]
    for f in history["findings"]:
        lines.append(
            f"| {f['role']} | {_cell(f['finding'])} | `{(f['found_in'] or '?')[:12]}` {f['found_at']} "
            f"| {('`' + (f['fixed_in'] or '?')[:12] + '` ' + f['fixed_at']) if f.get('fixed_at') else 'open'} "
            f"| {', '.join(f.get('environment_specific') or []) or 'all flavours'} |"
        )
    if not history["findings"]:
        lines.append("| (none found yet) | | | | |")
    return "\n".join(lines) + "\n"
