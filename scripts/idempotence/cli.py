"""The gate's command line: options, the list of roles, progress lines, evidence, exit status.

Exit status: 0 when every role is idempotent, 1 when a role is not idempotent (the message
names its tasks with file:line and the drifted paths, units and packages), 2 for bad options
or when a role could not be judged (a failed converge, a machine that would not boot, a time
budget run out).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from idempotence import evidence, gate
from idempotence.ansible import REPO_ROOT
from idempotence.watch import parse_ignores

DEFAULT_ARTIFACTS = REPO_ROOT / "ci-artifacts" / "idempotence"
DEFAULT_ROLES_DIR = REPO_ROOT / "roles"
DEFAULT_ROLE_GROUP = "core"


class UsageError(ValueError):
    """A bad option; the message names it and says what was expected."""


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="verify_idempotence.sh",
        description=(
            "Converge each role, snapshot what it touched, converge again and compare: a role "
            "is not idempotent when a repeat run reports a change or the state drifted. "
            "Without -i every role runs on fresh systemd-nspawn machines of two flavours "
            "(gpu: nvidia-smi stand-in and /dev/nvidia* nodes; plain: without)."
        ),
        epilog="Documentation: docs/idempotence-gate.md",
    )
    parser.add_argument("roles", nargs="*", metavar="ROLE",
                        help="roles to check (default: every role under roles/core, or under "
                             "--roles-path when given)")
    parser.add_argument("-i", "--inventory", metavar="INVENTORY",
                        help="run against the hosts of this inventory instead of fresh machines "
                             "(e.g. localhost with ansible_connection=local); host var "
                             "idempotence_flavour names a host's flavour")
    parser.add_argument("-l", "--limit", metavar="PATTERN", help="limit the inventory's hosts")
    parser.add_argument("--roles-path", action="append", default=[], metavar="DIR",
                        help="another directory of roles (repeatable); its roles are the "
                             "default set when no ROLE is named")
    parser.add_argument("--runs", type=int, default=2, metavar="N",
                        help="converge runs per role, N >= 2 (default 2)")
    parser.add_argument("-j", "--jobs", type=int, default=1, metavar="N",
                        help="roles checked in parallel, each on its own machines (default 1)")
    parser.add_argument("--shard", metavar="I/N",
                        help="check only the I-th of N equal shares of the roles (CI batching)")
    parser.add_argument("--baseline", metavar="FILE",
                        help="an earlier summary.json: report new and fixed findings")
    parser.add_argument("--watch", action="append", default=[], metavar="PATH",
                        help="also snapshot and compare this path (file, tree or glob; repeatable)")
    parser.add_argument("--ignore", action="append", default=[], metavar="PATH=REASON",
                        help="ignore drift under PATH; the reason is mandatory and recorded")
    parser.add_argument("-e", "--extra-vars", action="append", default=[], metavar="VARS",
                        help="extra vars for the converge runs, as for ansible-playbook -e")
    parser.add_argument("--flavours", default="gpu,plain", metavar="LIST",
                        help="machine flavours for fresh machines: gpu,plain (default), gpu or plain")
    parser.add_argument("--role-timeout", type=float, default=1200, metavar="SECONDS",
                        help="time budget per role, all runs included (default 1200)")
    parser.add_argument("--mtime", choices=("fail", "warn", "ignore"), default="fail",
                        help="what a change of mtime alone means (default fail)")
    parser.add_argument("--no-facts", action="store_true",
                        help="converge with gather_facts: false")
    parser.add_argument("--artifacts", default=str(DEFAULT_ARTIFACTS), metavar="DIR",
                        help=f"where the evidence goes (default {DEFAULT_ARTIFACTS.relative_to(REPO_ROOT)})")
    parser.add_argument("--no-history", action="store_true",
                        help="do not update history.json/history.md in the artifacts dir")
    parser.add_argument("--list-roles", action="store_true",
                        help="print the roles this invocation would check (after --shard) and exit")
    parser.add_argument("--keep-workdir", action="store_true",
                        help="keep each role's work files (playbook logs, records) and print where")
    return parser.parse_args(argv)


def discover_roles(roles_paths: list[Path]) -> list[str]:
    if roles_paths:
        found = []
        for base in roles_paths:
            found += sorted(p.name for p in base.iterdir() if (p / "tasks").is_dir())
        return found
    core = DEFAULT_ROLES_DIR / DEFAULT_ROLE_GROUP
    return sorted(f"{DEFAULT_ROLE_GROUP}/{p.name}" for p in core.iterdir() if (p / "tasks").is_dir()) if core.is_dir() else []


def select_shard(roles: list[str], shard: str | None) -> list[str]:
    if not shard:
        return roles
    try:
        index, total = (int(part) for part in shard.split("/"))
    except ValueError:
        raise UsageError(f"--shard: expected I/N with 1 <= I <= N, got {shard!r}") from None
    if not 1 <= index <= total:
        raise UsageError(f"--shard: expected I/N with 1 <= I <= N, got {shard!r}")
    return [role for position, role in enumerate(roles) if position % total == index - 1]


def build_options(args: argparse.Namespace) -> tuple[gate.Options, list[str]]:
    if args.runs < 2:
        raise UsageError(f"--runs: expected a number >= 2 (one converge plus repeats), got {args.runs}")
    if args.jobs < 1:
        raise UsageError(f"--jobs: expected a number >= 1, got {args.jobs}")
    if args.role_timeout <= 0:
        raise UsageError(f"--role-timeout: expected seconds > 0, got {args.role_timeout}")
    flavours = [f.strip() for f in args.flavours.split(",") if f.strip()]
    unknown = [f for f in flavours if f not in ("gpu", "plain")]
    if not flavours or unknown:
        raise UsageError(f"--flavours: expected gpu, plain or gpu,plain, got {args.flavours!r}")
    if args.limit and not args.inventory:
        raise UsageError("--limit: needs -i INVENTORY (fresh machines have no inventory to limit)")
    if args.inventory and not (Path(args.inventory).exists() or "," in args.inventory):
        raise UsageError(f"-i: inventory {args.inventory!r} does not exist")
    roles_paths = []
    for entry in args.roles_path:
        path = Path(entry).resolve()
        if not path.is_dir():
            raise UsageError(f"--roles-path: {entry!r} is not a directory")
        roles_paths.append(path)
    for path in args.watch:
        if not path.startswith("/"):
            raise UsageError(f"--watch: expected an absolute path on the target, got {path!r}")
    ignores = []
    for entry in args.ignore:
        path, _, reason = entry.partition("=")
        if not path.startswith("/") or not reason.strip():
            raise UsageError(
                f"--ignore {entry!r}: expected PATH=REASON with an absolute path and a written "
                "reason (why the path is volatile and not the role's fault)"
            )
        ignores += parse_ignores([{"path": path, "reason": reason}], "--ignore")
    roles = args.roles or discover_roles(roles_paths)
    if not roles:
        raise UsageError("no roles to check: name them, or give --roles-path, or add roles under roles/core")
    missing = [r for r in roles if gate.role_directory(r, roles_paths) is None]
    if missing:
        raise UsageError(
            f"role(s) not found: {', '.join(missing)} (looked in "
            f"{', '.join(str(p) for p in [*roles_paths, DEFAULT_ROLES_DIR])})"
        )
    roles = select_shard(roles, args.shard)
    options = gate.Options(
        runs=args.runs,
        inventory=str(Path(args.inventory).resolve()) if args.inventory and Path(args.inventory).exists() else args.inventory,
        limit=args.limit,
        flavours=flavours,
        extra_vars=args.extra_vars,
        watch=args.watch,
        cli_ignores=ignores,
        roles_paths=roles_paths,
        role_timeout_s=args.role_timeout,
        mtime=args.mtime,
        keep_workdir=args.keep_workdir,
        gather_facts=not args.no_facts,
    )
    return options, roles


def _name(entry: dict[str, Any]) -> str:
    for key in ("path", "unit", "package", "sysctl", "user", "group"):
        if entry.get(key) is not None:
            return f"{key} {entry[key]}"
    return "state"


def explain(result: gate.RoleResult) -> list[str]:
    """The lines that say why a role failed: tasks with file:line, drifted state."""
    lines = []
    for task in result.changed_tasks:
        where = f" only on {', '.join(task['environment_specific'])} (environment-specific)" if task.get("environment_specific") else ""
        lines.append(f"  changed on run {','.join(map(str, task['runs']))}: {task['location']} "
                     f"\"{task['task']}\" on {', '.join(task['hosts'])}{where}")
    for entry in result.drift:
        where = f" only on {', '.join(entry['environment_specific'])} (environment-specific)" if entry.get("environment_specific") else ""
        change = ""
        if entry.get("before") is not None or entry.get("after") is not None:
            change = f": {entry.get('before')!r} -> {entry.get('after')!r}"
        lines.append(f"  drift ({entry.get('kind')}): {_name(entry)}{change} on {', '.join(entry['hosts'])}{where}")
    for warning in result.warnings:
        lines.append(f"  warning (mtime only, --mtime {'warn'}): {_name(warning)}")
    for error in result.errors:
        first, *rest = error.splitlines()
        lines.append(f"  error: {first}")
        lines += [f"    {line}" for line in rest[-15:]]
    return lines


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        options, roles = build_options(args)
        baseline = None
        if args.baseline:
            try:
                baseline = json.loads(Path(args.baseline).read_text())
            except (OSError, ValueError) as error:
                raise UsageError(f"--baseline: cannot read {args.baseline}: {error}") from None
            if not isinstance(baseline, dict) or not isinstance(baseline.get("roles"), list):
                raise UsageError(f"--baseline: {args.baseline} is not a gate summary.json (no 'roles' list)")
    except UsageError as error:
        print(f"verify_idempotence: {error}", file=sys.stderr)
        return 2
    if args.list_roles:
        print("\n".join(roles))
        return 0
    if options.inventory is None and os.geteuid() != 0:
        print("verify_idempotence: fresh test machines need root (systemd-nspawn); "
              "run as root or give -i INVENTORY", file=sys.stderr)
        return 2

    artifacts = Path(args.artifacts)
    target = options.inventory or f"fresh machines ({', '.join(options.flavours)})"
    total = len(roles)
    width = len(str(total))
    print_lock = threading.Lock()
    started = time.monotonic()

    def say(line: str) -> None:
        with print_lock:
            print(line, flush=True)

    def check(position: int, role: str) -> gate.RoleResult:
        tag = f"[{position + 1:>{width}}/{total}]"
        say(f"{tag} {role}: start")
        result = gate.run_role(role, position, options,
                               progress=(lambda r, msg: say(f"{tag} {r}: {msg}")) if args.keep_workdir else None)
        say(f"{tag} {role}: {result.verdict.upper()} ({result.duration_s:.1f} s)")
        if not result.idempotent:
            for line in explain(result):
                say(line)
        return result

    say(f"idempotence gate: {total} role(s), {options.runs} runs each, on {target}, {args.jobs} at a time")
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        results = list(pool.map(check, range(total), roles))

    commit = evidence.git_commit()
    # Uncommitted changes in the roles judged (not elsewhere) make the evidence "dirty".
    role_dirs = [gate.role_directory(role, options.roles_paths) for role in roles]
    dirty = evidence.git_dirty([str(p) for p in role_dirs if p is not None])
    options_doc = {
        "runs": options.runs, "target": target, "limit": options.limit, "flavours": options.flavours,
        "watch": options.watch, "mtime": options.mtime, "role_timeout_s": options.role_timeout_s,
        "shard": args.shard, "jobs": args.jobs, "probe": evidence.probe_identity(),
    }
    rows = []
    for result in results:
        doc = evidence.role_document(result, commit, dirty, options_doc)
        evidence.atomic_write(artifacts / f"{gate.slug(result.role)}.json", json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n")
        rows.append(evidence.summary_row(doc))
    meta = {
        "generated_at": evidence.now(), "git_commit": commit, "git_dirty": dirty,
        "runs": options.runs, "target": target, "shard": args.shard,
        "duration_s": round(time.monotonic() - started, 2),
    }
    if baseline is not None:
        meta["baseline"] = {"file": args.baseline, **evidence.compare_with_baseline(rows, baseline)}
    summary = evidence.write_summary(artifacts, rows, meta)
    if not args.no_history:
        evidence.update_history(artifacts, rows, commit)

    say(f"idempotence gate: {summary['roles_idempotent']}/{total} idempotent, "
        f"{summary['roles_not_idempotent']} not idempotent, {summary['roles_error']} errors "
        f"in {meta['duration_s']:.1f} s; evidence in {artifacts}")
    if baseline is not None:
        for label in ("new", "fixed"):
            for item in meta["baseline"][label]:
                say(f"  {label} since baseline: {item['role']}: {item['finding']}")
    failing = [r for r in results if not r.idempotent]
    if failing:
        print("verify_idempotence: not idempotent: " + "; ".join(
            f"{r.role} ({r.verdict}: " + ", ".join(
                [f"{t['location']} \"{t['task']}\"" for t in r.changed_tasks]
                + [_name(d) for d in r.drift] + ([r.errors[0].splitlines()[0]] if r.errors else [])
            ) + ")" for r in failing), file=sys.stderr)
    if any(r.verdict == gate.VERDICT_ERROR for r in results):
        return 2
    return 1 if failing else 0
