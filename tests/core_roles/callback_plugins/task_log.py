"""Records every task result of a play as one JSON line (role, task, host, status, msg) in
the file named by $TASK_LOG_FILE, so the tests can say which role changed what on which run
without parsing Ansible's screen output."""

from __future__ import annotations

import json
import os

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
    name: task_log
    type: aggregate
    short_description: one JSON line per task result, for the core role tests
    description:
      - Appends role, task, host, status (ok, changed, skipped, failed, unreachable) and msg
        of every task result to the file named by the TASK_LOG_FILE environment variable.
    requirements:
      - TASK_LOG_FILE set
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "task_log"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        self._path = os.environ.get("TASK_LOG_FILE")

    def _record(self, result, status: str) -> None:
        if not self._path:
            return
        task = result._task
        role = task._role.get_name() if task._role else None
        outcome = result._result
        entry = {
            "role": role,
            "task": task.get_name(),
            "handler": task.__class__.__name__ == "Handler",
            "host": result._host.get_name(),
            "status": status,
            "msg": outcome.get("msg") if isinstance(outcome.get("msg"), str) else None,
            "stderr": outcome.get("stderr") if status in ("failed", "unreachable") else None,
        }
        if status == "ok" and outcome.get("changed"):
            entry["status"] = "changed"
        with open(self._path, "a", encoding="utf-8") as log:
            log.write(json.dumps(entry) + "\n")

    def v2_runner_on_ok(self, result) -> None:
        self._record(result, "changed" if result._result.get("changed") else "ok")

    def v2_runner_on_skipped(self, result) -> None:
        self._record(result, "skipped")

    def v2_runner_on_failed(self, result, ignore_errors=False) -> None:
        self._record(result, "failed")

    def v2_runner_on_unreachable(self, result) -> None:
        self._record(result, "unreachable")
