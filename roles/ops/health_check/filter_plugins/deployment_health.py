"""Merges every host's health_check result into one deployment health summary."""

from __future__ import annotations

import datetime

DOCUMENTATION = """
name: deployment_health
short_description: Merge per-host health_check results into one deployment summary
description:
  - Takes C(hostvars), the play's hosts and the fail-on policy (C(mandatory), C(any) or
    C(never)) and returns the deployment health summary document (schema in
    docs/health-summary-schema.md), plus C(should_fail) and C(failures), a per-host list.
"""

SCHEMA_VERSION = 1
FAIL_ON = ("mandatory", "any", "never")


def deployment_health(hostvars, hosts, fail_on="mandatory"):
    if fail_on not in FAIL_ON:
        raise ValueError(
            "health_check_fail_on must be one of %s, got %r" % (", ".join(FAIL_ON), fail_on)
        )
    per_host = {}
    failures = []
    failed_hosts = []
    counts = {"pass": 0, "warn": 0, "fail": 0, "unreachable": 0}
    for host in sorted(hosts):
        result = (hostvars.get(host) or {}).get("health_check_result")
        if not result or "summary" not in result:
            reason = (result or {}).get("msg") or "no health_check result (host unreachable or failed earlier)"
            per_host[host] = {"status": "unreachable", "msg": reason}
            counts["unreachable"] += 1
            if fail_on != "never":
                failures.append("%s: %s" % (host, reason))
                failed_hosts.append(host)
            continue
        summary = result["summary"]
        status = summary.get("status", "fail")
        counts[status if status in counts else "fail"] += 1
        checks = result.get("checks", [])
        per_host[host] = {"status": status, "msg": result.get("msg", ""), "summary": summary, "checks": checks}
        if fail_on == "never":
            continue
        failed = [
            c for c in checks
            if c.get("status") == "fail" and (c.get("mandatory") or fail_on == "any")
        ]
        if fail_on == "any":
            failed += [c for c in checks if c.get("status") == "warn"]
        if failed:
            failed_hosts.append(host)
            failures.append(
                "%s: %s" % (
                    host,
                    ", ".join(
                        "%s:%s (%s)" % (c.get("kind"), c.get("name"), c.get("message", ""))
                        for c in failed
                    ),
                )
            )
    if counts["fail"] or counts["unreachable"]:
        status = "fail"
    elif counts["warn"]:
        status = "warn"
    else:
        status = "pass"
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "deployment_health",
        "generated_at": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "fail_on": fail_on,
        "status": status,
        "hosts_total": len(per_host),
        "hosts_pass": counts["pass"],
        "hosts_warn": counts["warn"],
        "hosts_fail": counts["fail"],
        "hosts_unreachable": counts["unreachable"],
        "failed_hosts": failed_hosts,
        "failures": failures,
        "should_fail": bool(failures),
        "hosts": per_host,
    }


class FilterModule:
    def filters(self):
        return {"deployment_health": deployment_health}
