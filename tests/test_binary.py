"""The module binary run directly, as Ansible runs it (`health_check ARGS_FILE`) and as a
person would: one JSON object on stdout whatever happens, timeouts that hold."""

from __future__ import annotations

import re
import subprocess

import pytest

from conftest import MODULE_BINARY


def only_check(result: dict) -> dict:
    checks = result.get("checks")
    assert isinstance(checks, list) and len(checks) == 1, result
    return checks[0]


def test_binary_is_statically_linked(module_binary):
    proc = subprocess.run(["file", "-b", str(module_binary)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "statically linked" in proc.stdout or "static-pie linked" in proc.stdout, proc.stdout


def test_http_check_against_a_silent_server_times_out_in_time(run_module, silent_server):
    run = run_module({"http": [{"url": f"http://127.0.0.1:{silent_server}/", "timeout": "1s"}]})

    result = run.single_json_object()
    check = only_check(result)
    assert check["status"] == "fail", check
    assert "timed out" in check["message"].lower(), check
    assert result["failed"] is True, result
    # Bounded by the 1s timeout, not the silent server (margin for a loaded CI machine).
    assert run.elapsed_s < 6, f"took {run.elapsed_s:.2f}s for a 1s timeout"


def test_deadline_bounds_the_whole_run(run_module, silent_server, tcp_listener):
    # The deadline bounds the whole run even with a per-check timeout that is longer.
    run = run_module(
        {
            "http": [{"url": f"http://127.0.0.1:{silent_server}/", "timeout": "30s"}],
            "tcp": [f"127.0.0.1:{tcp_listener}"],
            "deadline": "1s",
        }
    )

    result = run.single_json_object()
    # Bounded by the 1s deadline, not the 30s check timeout (margin for a loaded CI machine).
    assert run.elapsed_s < 6, f"took {run.elapsed_s:.2f}s for a 1s deadline"
    statuses = {check["kind"]: check["status"] for check in result["checks"]}
    assert statuses == {"http": "fail", "tcp": "pass"}, result["checks"]
    assert result["failed"] is True


def test_http_check_passes_on_200_with_expected_body(run_module, http_server):
    run = run_module(
        {"http": [{"url": f"{http_server}/healthz", "status": 200, "body_contains": "nominal"}]}
    )

    result = run.single_json_object()
    assert only_check(result)["status"] == "pass", result
    assert result["failed"] is False
    assert result["changed"] is False
    assert result["summary"]["status"] == "pass"
    assert result["summary"]["schema_version"] == 1


def test_http_check_fails_on_500_and_says_so(run_module, http_server):
    run = run_module({"http": [{"url": f"{http_server}/error", "name": "api"}]})

    result = run.single_json_object()
    check = only_check(result)
    assert check["status"] == "fail", check
    assert "500" in check["message"] or "500" in check["observed"], check
    assert result["failed"] is True
    assert "http:api" in result["msg"], result["msg"]
    assert result["summary"]["mandatory_failed"] == ["http:api"]


def test_http_check_fails_when_body_lacks_the_text(run_module, http_server):
    run = run_module({"http": [{"url": f"{http_server}/healthz", "body_contains": "no such text"}]})

    result = run.single_json_object()
    assert only_check(result)["status"] == "fail", result
    assert result["failed"] is True


def test_http_head_request(run_module, http_server):
    run = run_module({"http": [{"url": f"{http_server}/healthz", "method": "HEAD"}]})

    assert only_check(run.single_json_object())["status"] == "pass"


def test_tcp_check_refused(run_module, closed_port):
    run = run_module({"tcp": [f"127.0.0.1:{closed_port}"]})

    result = run.single_json_object()
    check = only_check(result)
    assert check["status"] == "fail", check
    assert check["name"] == f"127.0.0.1:{closed_port}"
    assert "refused" in check["message"].lower(), check


def test_result_documents_every_check_field(run_module, tcp_listener):
    run = run_module({"tcp": [{"address": f"127.0.0.1:{tcp_listener}", "name": "app"}]})

    check = only_check(run.single_json_object())
    for field in ("kind", "name", "status", "mandatory", "expected", "observed", "message",
                  "duration_ms", "details"):
        assert field in check, f"check result lacks {field!r}: {check}"
    assert (check["kind"], check["name"], check["mandatory"]) == ("tcp", "app", True)


def test_ansible_keys_are_accepted_and_unknown_user_keys_rejected(run_module, tcp_listener):
    ok = run_module(
        {
            "tcp": [f"127.0.0.1:{tcp_listener}"],
            "_ansible_check_mode": True,
            "_ansible_diff": False,
            "_ansible_verbosity": 0,
            "_ansible_key_from_a_future_version": {"anything": 1},
        }
    ).single_json_object()
    assert ok["failed"] is False, ok

    bad = run_module({"tcp": [f"127.0.0.1:{tcp_listener}"], "foo": 1}).single_json_object()
    assert bad["failed"] is True
    assert "unsupported parameter 'foo'" in bad["msg"], bad["msg"]


def test_invalid_duration_names_the_parameter(run_module):
    result = run_module({"tcp": [{"address": "127.0.0.1:1", "timeout": "5x"}]}).single_json_object()

    assert result["failed"] is True
    assert "tcp[0].timeout" in result["msg"], result["msg"]


def test_no_checks_is_an_error(run_module):
    result = run_module({}).single_json_object()

    assert result["failed"] is True
    assert result["msg"], result


@pytest.mark.parametrize(
    "case",
    ["no argument", "missing file", "garbage file", "JSON that is not an object", "empty file"],
)
def test_bad_invocation_prints_one_failed_json_object(run_module, tmp_path, case):
    if case == "no argument":
        argv: list[str] = []
    elif case == "missing file":
        argv = [str(tmp_path / "does-not-exist.json")]
    else:
        content = {
            "garbage file": b"\x00\xff this is not json {{{",
            "JSON that is not an object": b"[1, 2, 3]",
            "empty file": b"",
        }[case]
        path = tmp_path / "args"
        path.write_bytes(content)
        argv = [str(path)]

    run = run_module(argv=argv)

    result = run.single_json_object()
    assert result.get("failed") is True, result
    assert isinstance(result.get("msg"), str) and result["msg"], result


@pytest.mark.parametrize("flag", ["--help", "--version"])
def test_help_and_version_exit_zero(module_binary, flag):
    proc = subprocess.run(
        [str(MODULE_BINARY), flag], capture_output=True, text=True, timeout=30,
        stdin=subprocess.DEVNULL,
    )

    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip(), f"{flag} printed nothing"
    if flag == "--version":
        assert re.search(r"\d+\.\d+\.\d+", proc.stdout), proc.stdout
