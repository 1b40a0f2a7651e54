"""Controller-side deployment health report: merges the hosts' health_check results, writes
the report (JSON, and optionally JUnit) atomically in one step, and fails exactly the hosts
that are unhealthy, each with its own message.

Why an action plugin and not tasks: a `set_fact` + `file` + `copy` chain costs a second per
play, runs once per play (so `serial:` batches judged hosts they had not reached yet, and the
failure was raised from one host for all), and never runs when no host is left (so the last
run's report survived a failed run). This plugin runs on the controller without touching the
host, in two phases:

* ``phase: start`` (``run_once``, before the module): the first call of a play's run replaces
  any old report with one that marks the batch's hosts as having no result yet, so a run whose
  hosts all become unreachable never leaves an older "pass" behind. It records the batch's
  hosts, so that a host that never returns a result is told apart from one whose batch has not
  run yet.
* ``phase: merge`` (every host, after the module): adds this host's result, judges it, rewrites
  the report from every batch so far under a lock (read, merge, temp file, fsync, rename), and
  fails this host alone when ``fail_on`` says so.

The report belongs to one run of one play (the play's id is stored in it): a later run starts
over, batches of the same run add up. Every call merges under a lock, so the `free` strategy
works too: each host merges as it finishes, and the last one writes the complete report.
"""

from __future__ import annotations

import datetime
import fcntl
import json
import os
import re
import tempfile
import xml.etree.ElementTree as ET

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

display = Display()

DOCUMENTATION = """
action: health_check_report
short_description: Merge, write and judge the deployment health report
description:
  - Used by the ops/health_check role. See the module doc of the plugin file.
options:
  phase:
    description: C(start) before the health_check task, C(merge) after it.
    type: str
    choices: [start, merge]
    required: true
  path:
    description: Where to write the merged JSON report on the controller; empty writes none.
    type: path
  junit_path:
    description: Where to write the merged JUnit XML (one testsuite per host); empty writes none.
    type: path
  fail_on:
    description: C(mandatory), C(any) or C(never).
    type: str
  result_var:
    description: The host variable that holds the registered health_check result.
    type: str
    default: health_check_result
  run_id:
    description: The run's id (default the play's); one id over several plays makes one report.
    type: str
  deployment:
    description: Facts about the deployment (commit, inventory, start time...), stored as C(deployment).
    type: dict
  stage:
    description: What the run is doing when this report is written (e.g. preflight, rollout).
    type: str
  hosts:
    description: Every host of the run, when this play's hosts are not those (a controller-only play).
    type: list
  latest_path:
    description: A symlink pointed at the report atomically after every write.
    type: path
  keep:
    description: With latest_path, how many reports (C(*.json)) to keep in the report's directory.
    type: int
    default: 20
"""

SCHEMA_VERSION = 1
FAIL_ON = ("mandatory", "any", "never")
PHASES = ("start", "merge")
NO_RESULT = "no health_check result (host unreachable or failed before the check returned)"
NOT_RUN = "not checked: the host failed before the health check ran"
PENDING = "not checked yet: its batch (serial) had not run when this report was written"
# XML 1.0 forbids these characters anywhere, escaped or not (C0 controls but tab, newline and
# carriage return; surrogates; U+FFFE and U+FFFF). They are replaced, never written.
_XML_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _controller_path(value, option: str) -> str:
    """`~` and `$VAR` expand like Ansible's `path` type (on the controller, where it is written)."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise AnsibleActionFail(f"health_check_report: '{option}' must be a path string, got {type(value).__name__}")
    if not value.strip():
        return ""
    return os.path.abspath(os.path.expanduser(os.path.expandvars(value)))


def _atomic_write(path: str, text: str) -> None:
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _write_artifact(path: str, text: str, what: str, compact: str | None = None) -> None:
    """Writes one controller-side artifact atomically, or fails the task naming it. When the
    full document does not fit (a full disk, a quota), `compact` (the same report without the
    hosts' check details) is written in its place, so that the file on disk never describes an
    earlier moment of this run (a start-of-run report calls every host unreachable)."""
    try:
        _atomic_write(path, text)
        return
    except OSError as error:
        reason = error.strerror or str(error)
        outcome = "the file there is unchanged"
        if compact is not None:
            try:
                _atomic_write(path, compact)
                outcome = "a summary without the hosts' check details was written in its place"
            except OSError:
                pass
        raise AnsibleActionFail(f"health_check_report: cannot write the {what} '{path}': {reason}; {outcome}")


def _compact(document: dict) -> dict:
    """The deployment document without each host's summary and passing checks: statuses,
    messages, counts and the checks that fail or warn (what the next merge of this run judges
    by)."""
    hosts = {}
    for host, entry in document["hosts"].items():
        hosts[host] = {k: v for k, v in entry.items() if k not in ("checks", "summary")}
        if "checks" in entry:
            hosts[host]["checks"] = [c for c in entry["checks"] or [] if c.get("status") in ("fail", "warn")]
    return dict(document, hosts=hosts,
                details_left_out="summaries and passing checks: the full report did not fit on its filesystem")


class _DirectoryLock:
    """An exclusive flock on the report's directory: read-merge-write of one report is serial
    across the worker processes, and no lock file is left behind."""

    def __init__(self, directory: str):
        self.fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)

    def __enter__(self):
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


def _host_entry(result) -> dict:
    """One host's entry from its registered health_check result."""
    if not isinstance(result, dict) or not result:
        return {"status": "unreachable", "msg": NO_RESULT}
    if result.get("unreachable"):
        return {"status": "unreachable", "msg": str(result.get("msg") or NO_RESULT)}
    summary = result.get("summary")
    if not isinstance(summary, dict):
        # The module ran but could not run the checks (rejected parameters, no binary...).
        return {"status": "error", "msg": str(result.get("msg") or "health_check returned no summary")}
    status = summary.get("status", "fail")
    if status not in ("pass", "warn", "fail"):
        status = "fail"
    return {"status": status, "msg": result.get("msg", ""), "summary": summary, "checks": result.get("checks", [])}


def _host_failures(entry: dict, fail_on: str) -> list[str]:
    """What fails this host under fail_on, each as `kind:name (message)`; [] when healthy."""
    if fail_on == "never":
        return []
    if entry["status"] in ("unreachable", "error"):
        return [entry.get("msg") or entry["status"]]
    checks = entry.get("checks") or []
    failed = [c for c in checks if c.get("status") == "fail" and (c.get("mandatory") or fail_on == "any")]
    if fail_on == "any":
        failed += [c for c in checks if c.get("status") == "warn"]
    return ["%s:%s (%s)" % (c.get("kind"), c.get("name"), c.get("message", "")) for c in failed]


def batch_summary(batches, per_host: dict, failed_hosts) -> list:
    """Each serial batch in order with its hosts and outcome: fail when a host of it fails,
    pending when none of its hosts has a result yet, pass otherwise."""
    summary = []
    for number, hosts in enumerate(batches, start=1):
        failing = [h for h in hosts if h in failed_hosts]
        if failing:
            status = "fail"
        elif all(per_host.get(h, {}).get("status") == "pending" for h in hosts):
            status = "pending"
        else:
            status = "pass"
        summary.append({"number": number, "hosts": list(hosts), "status": status, "failed_hosts": failing})
    return summary


def build_report(hosts_all, entries: dict, fail_on: str, run_id: str, batches=()) -> dict:
    """The deployment document (docs/health-summary-schema.md) from per-host entries; hosts
    without an entry are pending (their batch has not run)."""
    per_host = {}
    counts = {"pass": 0, "warn": 0, "fail": 0, "error": 0, "unreachable": 0, "pending": 0}
    failures = []
    failed_hosts = []
    for host in hosts_all:
        entry = entries.get(host) or {"status": "pending", "msg": PENDING}
        per_host[host] = entry
        counts[entry["status"]] += 1
        host_failures = _host_failures(entry, fail_on) if entry["status"] != "pending" else []
        if host_failures:
            failed_hosts.append(host)
            failures.append("%s: %s" % (host, ", ".join(host_failures)))
    if counts["fail"] or counts["error"] or counts["unreachable"] or counts["pending"]:
        status = "fail"
    elif counts["warn"]:
        status = "warn"
    else:
        status = "pass"
    batch_list = batch_summary(batches, per_host, failed_hosts)
    stopped = next((b for b in batch_list if b["status"] == "fail"), None)
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "deployment_health",
        "generated_at": _now(),
        "run_id": run_id,
        "complete": counts["pending"] == 0,
        "fail_on": fail_on,
        "status": status,
        "hosts_total": len(per_host),
        "hosts_pass": counts["pass"],
        "hosts_warn": counts["warn"],
        "hosts_fail": counts["fail"],
        "hosts_error": counts["error"],
        "hosts_unreachable": counts["unreachable"],
        "hosts_pending": counts["pending"],
        "failed_hosts": failed_hosts,
        "failures": failures,
        "should_fail": bool(failures),
        "batches": batch_list,
        # The first batch with a failing host: under max_fail_percentage the rollout stops there.
        "stopped_at_batch": ({"number": stopped["number"], "hosts": stopped["failed_hosts"]}
                             if stopped else None),
        "not_deployed": [h for h in hosts_all if per_host[h]["status"] == "pending"],
        "hosts": per_host,
    }


def fleet_line(report: dict) -> str:
    parts = [f"{report['hosts_' + s]} {s}" for s in ("pass", "warn", "fail", "error", "unreachable", "pending")
             if report["hosts_" + s]]
    line = "Deployment health: %s (fail_on: %s): %s of %d hosts" % (
        report["status"], report["fail_on"], ", ".join(parts) or "0", report["hosts_total"])
    if report["failed_hosts"]:
        line += "; failing: " + ", ".join(report["failed_hosts"])
    return line


def _point_latest(link: str, target: str) -> None:
    """Points the symlink `link` at `target` atomically (a new link renamed over the old)."""
    directory = os.path.dirname(link)
    os.makedirs(directory, mode=0o755, exist_ok=True)
    relative = os.path.relpath(target, directory)
    tmp = os.path.join(directory, ".%s.%d.tmp" % (os.path.basename(link), os.getpid()))
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass
    os.symlink(relative, tmp)
    os.replace(tmp, link)


def _prune(directory: str, keep: int, current: str) -> None:
    """Keeps the newest `keep` reports (*.json) of the directory, always the current one."""
    reports = []
    for name in os.listdir(directory):
        full = os.path.join(directory, name)
        if name.endswith(".json") and not name.startswith(".") and os.path.isfile(full) \
                and not os.path.islink(full):
            reports.append((os.stat(full).st_mtime, name, full))
    reports.sort(reverse=True)
    for _, _, full in reports[max(keep, 1):]:
        if full != current:
            try:
                os.unlink(full)
            except FileNotFoundError:
                pass


def _xml_text(value) -> str:
    return _XML_FORBIDDEN.sub("\ufffd", str(value))


def junit_document(report: dict) -> str:
    """One <testsuite> per inventory host (named by its inventory name), one <testcase> per
    check. Mandatory failures are <failure>; advisory failures and skipped checks are
    <skipped> with the message (they do not fail the deployment); a host without a result is
    one <error> testcase."""
    suites = ET.Element("testsuites", name="deployment_health")
    total = failures = errors = skipped = 0
    for host, entry in report["hosts"].items():
        suite = ET.SubElement(suites, "testsuite", name=_xml_text(host))
        s_tests = s_fail = s_err = s_skip = 0
        time_s = 0.0
        if entry["status"] in ("unreachable", "error", "pending"):
            case = ET.SubElement(suite, "testcase", classname="health_check", name=_xml_text(f"{host} result"))
            if entry["status"] == "pending":
                ET.SubElement(case, "skipped", message=_xml_text(entry.get("msg", "")))
                s_skip += 1
            else:
                node = ET.SubElement(case, "error", type=entry["status"], message=_xml_text(entry.get("msg", "")))
                node.text = _xml_text(entry.get("msg", ""))
                s_err += 1
            s_tests += 1
        for check in entry.get("checks") or []:
            seconds = float(check.get("duration_ms") or 0) / 1000.0
            time_s += seconds
            case = ET.SubElement(
                suite, "testcase",
                classname=_xml_text(f"health_check.{check.get('kind', '')}"),
                name=_xml_text(check.get("name", "")),
                time="%.3f" % seconds,
            )
            message = _xml_text(check.get("message", ""))
            status = check.get("status")
            if status == "fail" and check.get("mandatory"):
                node = ET.SubElement(case, "failure", type="mandatory", message=message)
                node.text = message
                s_fail += 1
            elif status == "fail":
                ET.SubElement(case, "skipped", message=_xml_text(f"advisory check failed: {check.get('message', '')}"))
                s_skip += 1
            elif status == "skip":
                ET.SubElement(case, "skipped", message=message)
                s_skip += 1
            elif status == "warn":
                ET.SubElement(case, "system-out").text = _xml_text(f"warning: {check.get('message', '')}")
            s_tests += 1
        suite.set("tests", str(s_tests))
        suite.set("failures", str(s_fail))
        suite.set("errors", str(s_err))
        suite.set("skipped", str(s_skip))
        suite.set("time", "%.3f" % time_s)
        total += s_tests
        failures += s_fail
        errors += s_err
        skipped += s_skip
    suites.set("tests", str(total))
    suites.set("failures", str(failures))
    suites.set("errors", str(errors))
    suites.set("skipped", str(skipped))
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("phase", "path", "junit_path", "fail_on", "result_var", "run_id", "deployment",
                             "stage", "hosts", "latest_path", "keep"))

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        result["changed"] = False
        args = self._task.args
        phase = args.get("phase")
        if phase not in PHASES:
            raise AnsibleActionFail(f"health_check_report: 'phase' must be one of {', '.join(PHASES)}, got {phase!r}")
        fail_on = args.get("fail_on") or "mandatory"
        if fail_on not in FAIL_ON:
            raise AnsibleActionFail(
                f"health_check_fail_on must be one of {', '.join(FAIL_ON)}, got {fail_on!r}")
        path = _controller_path(args.get("path"), "health_check_report_path")
        junit_path = _controller_path(args.get("junit_path"), "health_check_junit_report_path")
        if path and path == junit_path:
            raise AnsibleActionFail(
                f"health_check_report_path and health_check_junit_report_path are the same file ({path}): "
                "give each report its own path")
        result_var = args.get("result_var") or "health_check_result"

        latest_path = _controller_path(args.get("latest_path"), "latest_path")
        try:
            keep = int(args.get("keep") if args.get("keep") is not None else 20)
        except (TypeError, ValueError):
            raise AnsibleActionFail(f"health_check_report: 'keep' must be an integer, got {args.get('keep')!r}")
        deployment = args.get("deployment")
        if deployment is not None and not isinstance(deployment, dict):
            raise AnsibleActionFail("health_check_report: 'deployment' must be a dict")
        stage = args.get("stage")

        host = task_vars.get("inventory_hostname")
        hosts_all = list(task_vars.get("ansible_play_hosts_all") or [host])
        hosts_active = set(task_vars.get("ansible_play_hosts") or [])
        batch = list(task_vars.get("ansible_play_batch") or [])
        if args.get("hosts") is not None:
            # A controller-only play speaking for the run's hosts: none of them has been
            # reached, they are all pending.
            hosts_all = [str(h) for h in args.get("hosts")]
            hosts_active = set(hosts_all)
            batch = []
        run_id = str(args.get("run_id") or self._run_id())

        state = {"run_id": run_id, "seen": [], "hosts": {}, "batches": []}
        lock_dir = os.path.dirname(path) if path else None
        check_mode = bool(self._play_context.check_mode)
        if lock_dir and not check_mode:
            os.makedirs(lock_dir, mode=0o755, exist_ok=True)
            lock = _DirectoryLock(lock_dir)
        else:
            lock = None

        try:
            if lock:
                lock.__enter__()
            if path:
                state = self._load_state(path, run_id) or state
            seen = set(state["seen"]) | set(batch)
            batches = [list(b) for b in state.get("batches") or []]
            new_in_batch = [h for h in batch if all(h not in b for b in batches)]
            if new_in_batch:
                batches.append(new_in_batch)
            entries = dict(state["hosts"])
            if phase == "merge":
                entries[host] = _host_entry(task_vars.get(result_var))
                # Other hosts of this batch that have a result already (linear strategy: all
                # of them) count now, so every host's fleet line is the same.
                hostvars = task_vars.get("hostvars") or {}
                for other in batch:
                    if other != host and other not in entries:
                        other_result = (hostvars.get(other) or {}).get(result_var)
                        if isinstance(other_result, dict) and other_result:
                            entries[other] = _host_entry(other_result)
            for other in hosts_all:
                if other in entries:
                    continue
                if other in seen and phase == "merge":
                    entries[other] = {"status": "unreachable", "msg": NO_RESULT}
                elif other in seen:
                    entries[other] = {"status": "unreachable", "msg": NO_RESULT, "provisional": True}
                elif other not in hosts_active:
                    entries[other] = {"status": "unreachable", "msg": NOT_RUN}
            # Provisional entries (a start phase's "no result yet") stand only until a result comes.
            report = build_report(hosts_all, entries, fail_on, run_id, batches)
            state = {"run_id": run_id, "seen": sorted(seen), "batches": batches,
                     "hosts": {h: e for h, e in entries.items() if not e.get("provisional")}}
            if deployment is not None:
                report["deployment"] = dict(deployment, ended_at=report["generated_at"])
            if stage:
                report["stage"] = str(stage)
            report_public = self._public(report)
            if path and not check_mode:
                document = dict(report_public)
                document["_state"] = {"seen": state["seen"], "merged": sorted(state["hosts"]),
                                      "batches": state["batches"]}
                _write_artifact(path, json.dumps(document, indent=2, sort_keys=False) + "\n",
                                "deployment health report",
                                compact=json.dumps(_compact(document), sort_keys=False) + "\n")
                if latest_path:
                    _point_latest(latest_path, path)
                    _prune(os.path.dirname(path), keep, path)
                if junit_path:
                    os.makedirs(os.path.dirname(junit_path), mode=0o755, exist_ok=True)
                    _write_artifact(junit_path, junit_document(report_public), "merged JUnit report")
            elif junit_path and not check_mode:
                os.makedirs(os.path.dirname(junit_path), mode=0o755, exist_ok=True)
                _write_artifact(junit_path, junit_document(report_public), "merged JUnit report")
        finally:
            if lock:
                lock.__exit__(None, None, None)

        line = fleet_line(report)
        # Kept small: Ansible prints the whole result of a failed host.
        result.update(status=report["status"], complete=report["complete"], failed_hosts=report["failed_hosts"])
        if phase == "start":
            result["msg"] = "deployment health report started for %d hosts" % len(hosts_all)
            return result
        own = _host_failures(report["hosts"][host], fail_on)
        result["host_status"] = report["hosts"][host]["status"]
        if own:
            result["failed"] = True
            result["msg"] = "%s\n%s: %s" % (line, host, ", ".join(own))
        else:
            result["msg"] = line
            if batch and host == batch[0]:
                display.display(line)
        return result

    def _run_id(self) -> str:
        """The play's id: the same for every batch and host of one run, new for each run."""
        try:
            play = self._task.get_play()
            return "%s/%s" % (os.getppid(), play._uuid)
        except AttributeError:
            return "%s" % os.getppid()

    @staticmethod
    def _load_state(path: str, run_id: str):
        """The merged hosts of this run from the report on disk; None for another run's report."""
        try:
            with open(path, encoding="utf-8") as handle:
                old = json.load(handle)
        except (OSError, ValueError):
            return None
        if not isinstance(old, dict) or old.get("run_id") != run_id:
            return None
        state = old.get("_state") or {}
        merged = set(state.get("merged") or [])
        hosts = {h: e for h, e in (old.get("hosts") or {}).items() if h in merged and isinstance(e, dict)}
        return {"run_id": run_id, "seen": list(state.get("seen") or []), "hosts": hosts,
                "batches": [list(b) for b in state.get("batches") or [] if isinstance(b, list)]}

    @staticmethod
    def _public(report: dict) -> dict:
        hosts = {h: {k: v for k, v in e.items() if k != "provisional"} for h, e in report["hosts"].items()}
        return dict(report, hosts=hosts)
