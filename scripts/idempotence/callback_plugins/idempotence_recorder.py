"""Ansible callback plugin of the idempotence gate: one JSON line per task result.

Enabled by the gate (scripts/idempotence) with

    ANSIBLE_CALLBACK_PLUGINS=scripts/idempotence/callback_plugins
    ANSIBLE_CALLBACKS_ENABLED=idempotence_recorder
    IDEMPOTENCE_RECORD_FILE=/path/to/run-N.jsonl

and usable the same way beside any other stdout callback. Each line says, per host and task:
the role, the task name, the task's file:line, the action, the outcome (`ok`, `changed`,
`failed`, `skipped`, `unreachable`) and the paths, units, packages, users, groups and sysctl
keys the task names (`dest`, `path`, `name`, `creates`... of its result and its rendered
arguments). Nothing else of the result is written, so no secret reaches the record; a task
with `no_log` contributes its outcome only. Results of the `idempotence_probe` module are kept
whole: they are the gate's own snapshot and compare answers.
"""

from __future__ import annotations

import json
import os
import threading

from ansible.playbook.handler import Handler
from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: idempotence_recorder
type: aggregate
short_description: records per task result role, task, file:line, host, changed and named state
description:
  - Writes one JSON object per task result to the file named by C(IDEMPOTENCE_RECORD_FILE).
  - Used by scripts/verify_idempotence.sh to find the tasks that changed on a repeat run and
    the state that the first run touched.
requirements:
  - IDEMPOTENCE_RECORD_FILE set in the environment (nothing is recorded without it)
"""

PATH_KEYS = ("dest", "path", "creates", "removes", "name")
# Actions whose `name` is a file path rather than a unit or package name.
PATH_NAME_ACTIONS = {"mount", "ansible.posix.mount"}
UNIT_ACTIONS = {
    "service", "systemd", "systemd_service", "ansible.builtin.service",
    "ansible.builtin.systemd", "ansible.builtin.systemd_service",
}
PACKAGE_ACTIONS = {"apt", "package", "ansible.builtin.apt", "ansible.builtin.package"}
USER_ACTIONS = {"user", "ansible.builtin.user"}
GROUP_ACTIONS = {"group", "ansible.builtin.group"}
SYSCTL_ACTIONS = {"sysctl", "ansible.posix.sysctl"}
PROBE_ACTIONS = {"idempotence_probe"}
FACT_ACTIONS = {"gather_facts", "setup"}
# The gathered facts that help read a verdict (what kind of host it was).
FACT_KEYS = (
    "distribution", "distribution_version", "kernel", "architecture", "virtualization_type",
    "virtualization_role", "python_version", "service_mgr", "pkg_mgr", "processor_vcpus",
)


def _as_list(value):
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [v for v in value if isinstance(v, str)]
    if isinstance(value, str):
        return [value]
    return []


def _package_names(value):
    names = []
    for entry in _as_list(value):
        for name in entry.split(","):
            name = name.strip()
            # apt accepts name=version and name>=version; the package is the part before.
            for separator in ("=", ">", "<"):
                name = name.split(separator, 1)[0]
            if name and not name.endswith(".deb") and name != "*":
                names.append(name)
    return names


def named_state(action, args, result):
    """The state a task names: {"paths": [...], "units": [...], ...} (lists may be empty)."""
    named = {"paths": [], "units": [], "packages": [], "users": [], "groups": [], "sysctl": []}
    sources = [args or {}, result or {}]
    short = action.rsplit(".", 1)[-1] if action else ""
    for source in sources:
        for key in PATH_KEYS:
            if key == "name" and action not in PATH_NAME_ACTIONS:
                continue
            for value in _as_list(source.get(key)):
                if value.startswith("/"):
                    named["paths"].append(value)
        name = source.get("name")
        if action in UNIT_ACTIONS or short in ("systemd", "service", "systemd_service"):
            for unit in _as_list(name):
                named["units"].append(unit if "." in unit else f"{unit}.service")
        if action in PACKAGE_ACTIONS or short in ("apt", "package"):
            named["packages"].extend(_package_names(name or source.get("pkg")))
        if action in USER_ACTIONS or short == "user":
            named["users"].extend(_as_list(name))
            home = source.get("home")
            if isinstance(home, str) and home.startswith("/") and source.get("state") != "absent":
                named["paths"].append(home)
        if action in GROUP_ACTIONS or short == "group":
            named["groups"].extend(_as_list(name))
        if action in SYSCTL_ACTIONS or short == "sysctl":
            named["sysctl"].extend(_as_list(name))
            sysctl_file = source.get("sysctl_file")
            if isinstance(sysctl_file, str) and sysctl_file.startswith("/"):
                named["paths"].append(sysctl_file)
    return {kind: sorted(set(values)) for kind, values in named.items()}


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "idempotence_recorder"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._path = os.environ.get("IDEMPOTENCE_RECORD_FILE")
        self._lock = threading.Lock()
        self._play = None

    def _write(self, record):
        if not self._path:
            return
        line = json.dumps(record, sort_keys=True, default=str)
        with self._lock, open(self._path, "a", encoding="utf-8") as out:
            out.write(line + "\n")

    def v2_playbook_on_play_start(self, play):
        self._play = play.get_name()

    def _record(self, result, outcome):
        task = result._task
        host = result._host.get_name()
        raw = result._result if isinstance(result._result, dict) else {}
        role = task._role.get_name() if task._role else None
        # A handler's or an included role's task may come from another role than the play's.
        record = {
            "host": host,
            "play": self._play,
            "role": role,
            "task": task.get_name(),
            "path": task.get_path(),
            "action": task.action,
            "handler": isinstance(task, Handler),
            "outcome": outcome,
            "changed": bool(raw.get("changed")) and outcome in ("ok", "changed"),
        }
        if record["changed"]:
            record["outcome"] = "changed"
        no_log = bool(task.no_log) or raw.get("censored") is not None
        record["no_log"] = no_log
        if outcome in ("failed", "ignored", "unreachable") and not no_log:
            record["msg"] = str(raw.get("msg", ""))[:2000]
        if outcome == "skipped":
            record["skip_reason"] = str(raw.get("skip_reason", raw.get("skipped_reason", "")))
        if not no_log:
            items = raw.get("results") if isinstance(raw.get("results"), list) else None
            args = (raw.get("invocation") or {}).get("module_args") or {}
            if not args and isinstance(task.args, dict):
                # Not rendered yet: keep only literal values, never a template.
                args = {
                    k: v for k, v in task.args.items() if isinstance(v, str) and "{{" not in v
                }
            state = named_state(task.action, args, raw)
            for item in items or []:
                if isinstance(item, dict):
                    item_args = (item.get("invocation") or {}).get("module_args") or {}
                    for kind, values in named_state(task.action, item_args, item).items():
                        state[kind] = sorted(set(state[kind]) | set(values))
            record["named"] = state
            if items is not None:
                record["changed_items"] = [
                    str(item.get("item"))[:200]
                    for item in items
                    if isinstance(item, dict) and item.get("changed")
                ]
            facts = raw.get("ansible_facts")
            if isinstance(facts, dict) and task.action.rsplit(".", 1)[-1] in FACT_ACTIONS:
                record["facts"] = {
                    key: facts.get(f"ansible_{key}", facts.get(key))
                    for key in FACT_KEYS
                    if facts.get(f"ansible_{key}", facts.get(key)) not in (None, "")
                }
            if task.action.rsplit(".", 1)[-1] in PROBE_ACTIONS:
                record["probe"] = raw
        self._write(record)

    def v2_runner_on_ok(self, result):
        self._record(result, "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record(result, "ignored" if ignore_errors else "failed")

    def v2_runner_on_skipped(self, result):
        self._record(result, "skipped")

    def v2_runner_on_unreachable(self, result):
        self._record(result, "unreachable")
