"""One role through the gate: converge, snapshot, converge again, compare, verdict."""

from __future__ import annotations

import contextlib
import json
import os
import posixpath
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from idempotence import ansible
from idempotence.records import RunRecords, task_summary
from idempotence.watch import Declaration, Ignore, build_watch_set, load_declaration

# On the target: where the probe keeps its snapshots (removed after the last compare).
SNAPSHOT_ROOT = "/var/tmp/idempotence-gate"

VERDICT_IDEMPOTENT = "idempotent"
VERDICT_NOT_IDEMPOTENT = "not idempotent"
VERDICT_ERROR = "error"


@dataclass
class Options:
    runs: int = 2
    inventory: str | None = None  # None: fresh machines
    limit: str | None = None
    flavours: list[str] = field(default_factory=lambda: ["gpu", "plain"])
    extra_vars: list[str] = field(default_factory=list)
    watch: list[str] = field(default_factory=list)
    cli_ignores: list[Ignore] = field(default_factory=list)
    roles_paths: list[Path] = field(default_factory=list)
    role_timeout_s: float = 1200.0
    probe_timeout_s: float = 120.0
    mtime: str = "fail"  # fail | warn | ignore: what mtime-only drift means for the verdict
    keep_workdir: bool = False
    gather_facts: bool = True


@dataclass
class RoleResult:
    role: str
    verdict: str
    duration_s: float
    hosts: dict[str, str]  # host -> flavour
    runs: list[dict[str, Any]]
    changed_tasks: list[dict[str, Any]]  # changed on a repeat run, with file:line and hosts
    drift: list[dict[str, Any]]
    ignored_drift: list[dict[str, Any]]
    warnings: list[dict[str, Any]]
    ignores: list[dict[str, str]]
    watch: dict[str, dict[str, list[str]]]
    errors: list[str]
    environment_specific: list[dict[str, Any]]
    facts: dict[str, Any]
    not_compared: dict[str, list[str]]
    probe_entries_compared: dict[str, int]

    @property
    def idempotent(self) -> bool:
        return self.verdict == VERDICT_IDEMPOTENT


def role_directory(role: str, roles_paths: list[Path]) -> Path | None:
    for base in [*roles_paths, ansible.REPO_ROOT / "roles"]:
        candidate = base / role
        if (candidate / "tasks").is_dir():
            return candidate
    return None


def slug(role: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", ".", role).strip(".")


def _converge_playbook(path: Path, role: str, gather_facts: bool) -> None:
    path.write_text(
        "---\n"
        f"- name: Converge {role}\n"
        '  hosts: "{{ idempotence_hosts }}"\n'
        f"  gather_facts: {'true' if gather_facts else 'false'}\n"
        "  roles:\n"
        f"    - role: {json.dumps(role)}\n"
    )


@contextlib.contextmanager
def _targets(role_index: int, options: Options, workdir: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """(inventory, {host: flavour}): fresh machines, or the hosts of the given inventory."""
    if options.inventory is None:
        from idempotence.machines import fresh_machines

        inventory = workdir / "machines.ini"
        prefix = f"idem-{os.getpid()}-{role_index}"
        with fresh_machines(prefix, options.flavours, inventory) as hosts:
            yield str(inventory), hosts
        return
    yield options.inventory, {}


def _flavours_of(inventory: str, limit: str | None, env: dict[str, str]) -> dict[str, str]:
    """host -> flavour for a given inventory: the host var idempotence_flavour, else
    `default`."""
    command = [str(ansible.VENV_BIN / "ansible-inventory"), "-i", inventory, "--list"]
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"ansible-inventory -i {inventory} failed: {proc.stderr.strip()[-2000:]}")
    data = json.loads(proc.stdout)
    hostvars = data.get("_meta", {}).get("hostvars", {})
    hosts: set[str] = set()
    for group, content in data.items():
        if group != "_meta" and isinstance(content, dict):
            hosts.update(content.get("hosts", []))
    hosts.update(hostvars)
    if limit:
        listed = subprocess.run(
            [str(ansible.VENV_BIN / "ansible"), "-i", inventory, "--list-hosts", limit],
            env=env, capture_output=True, text=True, timeout=120,
        )
        wanted = {line.strip() for line in listed.stdout.splitlines()[1:] if line.strip()}
        hosts &= wanted
    return {h: str(hostvars.get(h, {}).get("idempotence_flavour", "default")) for h in sorted(hosts)}


def _normalised(watch: dict[str, list[str]]) -> dict[str, list[str]]:
    """Watched paths as the probe wants them: absolute, without `.`/`..` or trailing `/`."""
    paths = {posixpath.normpath(p) for p in watch["paths"] if p.startswith("/")}
    # A file under /proc/sys is a kernel parameter: compared by value as a sysctl key.
    sysctl = set(watch["sysctl"]) | {
        p[len("/proc/sys/"):].replace("/", ".") for p in paths if p.startswith("/proc/sys/")
    }
    paths = {p for p in paths if not p.startswith("/proc/") and "/../" not in f"{p}/"}
    return {**watch, "paths": sorted(paths), "sysctl": sorted(sysctl)}


def _drift_subject(entry: dict[str, Any]) -> tuple[str, str]:
    for key, subject in (("path", "path"), ("unit", "unit"), ("package", "package"),
                         ("sysctl", "sysctl"), ("user", "user"), ("group", "group")):
        if entry.get(key) is not None:
            return subject, str(entry[key])
    return "state", json.dumps(entry, sort_keys=True)


def _merge(findings: dict[tuple, dict[str, Any]], key: tuple, item: dict[str, Any], host: str,
           run: int) -> None:
    entry = findings.setdefault(key, {**item, "hosts": [], "runs": []})
    if host not in entry["hosts"]:
        entry["hosts"].append(host)
    if run not in entry["runs"]:
        entry["runs"].append(run)


def _environment_specific(findings: list[dict[str, Any]], hosts: dict[str, str]) -> list[dict[str, Any]]:
    """Findings seen on some flavours of the run but not on all of them."""
    flavours = set(hosts.values())
    special = []
    if len(flavours) < 2:
        return special
    for finding in findings:
        seen = {hosts.get(h, "default") for h in finding["hosts"]}
        if seen != flavours:
            finding["environment_specific"] = sorted(seen)
            special.append(finding)
    return special


def run_role(role: str, role_index: int, options: Options, progress=None) -> RoleResult:
    started = time.monotonic()
    deadline = started + options.role_timeout_s
    errors: list[str] = []
    runs: list[dict[str, Any]] = []
    watch: dict[str, dict[str, list[str]]] = {}
    hosts: dict[str, str] = {}
    changed: dict[tuple, dict[str, Any]] = {}
    drift: dict[tuple, dict[str, Any]] = {}
    ignored: dict[tuple, dict[str, Any]] = {}
    warnings: dict[tuple, dict[str, Any]] = {}
    facts: dict[str, Any] = {}
    not_compared: dict[str, set[str]] = {}
    compared: dict[str, int] = {}

    role_dir = role_directory(role, options.roles_paths)
    declaration = Declaration()
    if role_dir is None:
        errors.append(f"role {role!r} not found (no tasks/ under {', '.join(str(p) for p in [*options.roles_paths, ansible.REPO_ROOT / 'roles'])})")
    else:
        try:
            declaration = load_declaration(role_dir, _shown(role_dir))
        except ValueError as error:
            errors.append(str(error))
    ignores = [*declaration.ignores, *options.cli_ignores]

    workdir = Path(tempfile.mkdtemp(prefix=f"idem-{slug(role)}-"))
    (workdir / "ansible-local-tmp").mkdir()
    env = ansible.ansible_env(options.roles_paths, workdir)
    snapshot_dir = f"{SNAPSHOT_ROOT}/{os.getpid()}-{role_index}-{slug(role)}"
    try:
        if errors:
            raise _Stop()
        with _targets(role_index, options, workdir) as (inventory, machine_hosts):
            hosts = machine_hosts or _flavours_of(inventory, options.limit, env)
            if not hosts:
                errors.append(f"no hosts in inventory {inventory}" + (f" --limit {options.limit}" if options.limit else ""))
                raise _Stop()
            converge = workdir / "converge.yml"
            _converge_playbook(converge, role, options.gather_facts)
            base_vars = [
                ansible.write_vars(workdir / "gate-vars.json", {"idempotence_hosts": ",".join(hosts)}),
                *options.extra_vars,
            ]

            def playbook(name: str, path: Path, extra: list[str]) -> tuple[ansible.PlaybookResult, RunRecords]:
                result = ansible.run_playbook(
                    path, inventory, [*base_vars, *extra], env,
                    workdir / f"{name}.jsonl", workdir / f"{name}.log", deadline, options.limit,
                )
                return result, RunRecords.load(workdir / f"{name}.jsonl")

            def probe(state: str, run: int) -> dict[str, dict[str, Any]] | None:
                probe_vars = ansible.write_vars(
                    workdir / f"probe-{state}-{run}.json",
                    {
                        "idempotence_probe_state": state,
                        "idempotence_snapshot_name": "gate",
                        "idempotence_snapshot_dir": snapshot_dir,
                        "idempotence_watch": {
                            h: {**w, "ignore": [{i.subject: i.pattern, "reason": i.reason} for i in ignores]}
                            for h, w in watch.items()
                        },
                        "idempotence_mtime": options.mtime,
                        "idempotence_probe_timeout": f"{options.probe_timeout_s:.0f}s",
                    },
                )
                result, records = playbook(f"probe-{state}-{run}", ansible.PLAYBOOK_DIR / "probe.yml", [probe_vars])
                answers = records.probe_results()
                bad = [h for h in hosts if h not in answers or answers[h].get("failed")]
                if result.timed_out or bad:
                    detail = "; ".join(
                        f"{h}: {answers.get(h, {}).get('msg', 'no answer')}" for h in bad
                    ) or "time budget exhausted"
                    errors.append(f"idempotence_probe {state} after run {run} failed: {detail}\n{result.log_tail(1500)}")
                    return None
                return answers

            for run in range(1, options.runs + 1):
                result, records = playbook(f"run-{run}", converge, [])
                run_changed = [task_summary(r, ansible.REPO_ROOT) for r in records.changed()]
                runs.append({
                    "run": run,
                    "returncode": result.returncode,
                    "duration_s": round(result.elapsed_s, 2),
                    "timed_out": result.timed_out,
                    "tasks": len(records.records),
                    "changed": run_changed,
                    "failed": [
                        {**task_summary(r, ansible.REPO_ROOT), "msg": r.get("msg", "")}
                        for r in records.failed()
                    ],
                })
                if result.timed_out:
                    errors.append(f"run {run} ran out of the role's time budget ({options.role_timeout_s:.0f} s)")
                    raise _Stop()
                if result.returncode != 0:
                    failures = "; ".join(
                        f"{r['host']}: {task_summary(r, ansible.REPO_ROOT)['location']} "
                        f"\"{r.get('task')}\" {r.get('outcome')}: {str(r.get('msg', ''))[:300]}"
                        for r in records.failed()
                    ) or "no task failed (see the log)"
                    errors.append(
                        f"run {run} failed (ansible-playbook exit {result.returncode}): {failures}\n"
                        f"{result.log_tail()}"
                    )
                    raise _Stop()
                if progress:
                    progress(role, f"run {run} done ({result.elapsed_s:.1f} s, {len(run_changed)} changed)")
                if run == 1:
                    for host in hosts:
                        watch[host] = _normalised(build_watch_set(
                            records.named_state(host), declaration, options.watch, [SNAPSHOT_ROOT]
                        ))
                    facts = _facts(records)
                    if probe("snapshot", run) is None:
                        raise _Stop()
                    continue
                for record in records.changed():
                    summary = task_summary(record, ansible.REPO_ROOT)
                    key = (summary["location"], summary["task"])
                    _merge(changed, key, {k: v for k, v in summary.items() if k != "host"}, record["host"], run)
                answers = probe("compare", run)
                if answers is None:
                    raise _Stop()
                for host, answer in answers.items():
                    if answer.get("drift_not_listed"):
                        errors.append(
                            f"{host}: the probe found {answer['drift_not_listed']} more drift entries "
                            f"after run {run} than it lists; narrow the watch set or fix the listed ones first"
                        )
                    compared[host] = int(answer.get("entries_compared") or 0)
                    if answer.get("not_compared"):
                        not_compared.setdefault(host, set()).update(map(str, answer["not_compared"]))
                    for entry in answer.get("ignored") or []:
                        subject, name = _drift_subject(entry)
                        match = next((i for i in ignores if i.matches(subject, name)), None)
                        source = match.source if match else "probe"
                        _merge(ignored, (subject, name, entry.get("kind")), {**entry, "declared_in": source}, host, run)
                    for entry in answer.get("drift") or []:
                        subject, name = _drift_subject(entry)
                        key = (subject, name, entry.get("kind"))
                        match = next((i for i in ignores if i.matches(subject, name)), None)
                        if match is not None:
                            _merge(ignored, key, {**entry, "reason": match.reason, "declared_in": match.source}, host, run)
                        elif entry.get("severity") == "warn":
                            _merge(warnings, key, entry, host, run)
                        else:
                            _merge(drift, key, entry, host, run)
            with contextlib.suppress(Exception):
                subprocess.run(
                    [str(ansible.VENV_BIN / "ansible"), "-i", inventory, ",".join(hosts), "-m", "ansible.builtin.raw",
                     "-a", f"rm -rf {snapshot_dir}"],
                    env=env, capture_output=True, timeout=60, cwd=ansible.REPO_ROOT,
                )
    except _Stop:
        pass
    except Exception as error:  # a machine that would not boot, an inventory that would not parse
        errors.append(f"{type(error).__name__}: {error}")
    finally:
        if options.keep_workdir:
            errors_note = f"work files kept in {workdir}"
            if progress:
                progress(role, errors_note)
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    changed_list = sorted(changed.values(), key=lambda e: (e["location"], e["task"] or ""))
    drift_list = sorted(drift.values(), key=lambda e: json.dumps(e, sort_keys=True))
    special = _environment_specific([*changed_list, *drift_list], hosts)
    if errors:
        verdict = VERDICT_ERROR
    elif changed_list or drift_list:
        verdict = VERDICT_NOT_IDEMPOTENT
    else:
        verdict = VERDICT_IDEMPOTENT
    return RoleResult(
        role=role,
        verdict=verdict,
        duration_s=round(time.monotonic() - started, 2),
        hosts=hosts,
        runs=runs,
        changed_tasks=changed_list,
        drift=drift_list,
        ignored_drift=sorted(ignored.values(), key=lambda e: json.dumps(e, sort_keys=True)),
        warnings=sorted(warnings.values(), key=lambda e: json.dumps(e, sort_keys=True)),
        ignores=[i.to_json() for i in ignores],
        watch=watch,
        errors=errors,
        environment_specific=special,
        facts=facts,
        not_compared={h: sorted(v) for h, v in not_compared.items()},
        probe_entries_compared=compared,
    )


class _Stop(Exception):
    """Ends a role's run early; the reason is already in its errors."""


def _shown(path: Path) -> str:
    with contextlib.suppress(ValueError):
        return str(path.resolve().relative_to(ansible.REPO_ROOT))
    return str(path)


def _facts(records: RunRecords) -> dict[str, Any]:
    """Host facts that matter for reading a verdict, from run 1's records (the callback keeps
    only a few gathered facts)."""
    facts = {}
    for record in records.records:
        if record.get("facts"):
            facts[record["host"]] = record["facts"]
    return facts
