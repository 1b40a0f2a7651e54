"""Inputs the module must judge before it checks anything: unique check names, `~` and `$VAR`
in artifact paths, one path per artifact, and resource checks that are advice by default."""

from __future__ import annotations

import json
import os
import subprocess


def test_two_checks_with_the_same_name_are_rejected(run_module, tcp_listener):
    result = run_module({"tcp": [
        {"address": f"127.0.0.1:{tcp_listener}", "name": "app"},
        {"address": f"127.0.0.2:{tcp_listener}", "name": "app"},
    ]}).single_json_object()
    assert result["failed"] is True, result
    assert "checks" not in result or result["checks"] == [], result
    assert "duplicate check name" in result["msg"] and "tcp:app" in result["msg"], result["msg"]


def test_artifact_paths_expand_home_and_one_path_serves_one_artifact(
    module_binary, tmp_path, tcp_listener
):
    home = tmp_path / "home"
    (home / "out").mkdir(parents=True)
    args = tmp_path / "args.json"

    def run(params: dict) -> dict:
        args.write_text(json.dumps(params))
        proc = subprocess.run([str(module_binary), str(args)], capture_output=True, text=True,
                              timeout=60, env={**os.environ, "HOME": str(home)}, cwd=tmp_path)
        return json.loads(proc.stdout)

    result = run({"tcp": [f"127.0.0.1:{tcp_listener}"], "summary_path": "~/out/summary.json",
                  "junit_path": "$HOME/out/junit.xml"})
    assert result["failed"] is False, result
    assert (home / "out" / "summary.json").is_file(), result
    assert (home / "out" / "junit.xml").is_file(), result
    assert not (tmp_path / "~").exists()

    same = run({"tcp": [f"127.0.0.1:{tcp_listener}"], "summary_path": str(tmp_path / "x"),
                "prometheus_path": str(tmp_path / "x")})
    assert same["failed"] is True, same
    assert "summary_path" in same["msg"] and "prometheus_path" in same["msg"], same["msg"]
    assert not (tmp_path / "x").exists()


def test_memory_and_load_are_advisory_by_default(run_module):
    # Limits no host can meet: the checks fail, but only as advice.
    result = run_module({"memory": {"max_used_percent": 0}, "load": {"max_per_cpu": 0.001}}).single_json_object()
    assert result["failed"] is False, result
    by_kind = {check["kind"]: check for check in result["checks"]}
    assert by_kind["memory"]["mandatory"] is False and by_kind["load"]["mandatory"] is False, result
    # Asked for explicitly, they can still fail the host.
    strict = run_module({"memory": {"max_used_percent": 0, "mandatory": True}}).single_json_object()
    assert strict["failed"] is True, strict
