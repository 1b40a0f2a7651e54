"""The module's artifacts read by their real consumers: `promtool check metrics`, node_exporter's
textfile collector (run on a free port and scraped), and a JUnit parser; and a `msg` that stays
readable when many checks fail."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import junitparser
import pytest

# XML 1.0 cannot carry these at all (C0 controls, U+FFFE, U+FFFF), escaped or not.
XML_FORBIDDEN = "\x01\x0b\x1f\ufffe\uffff"


def host_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is missing: run scripts/bootstrap.sh (Debian packages)", pytrace=False)
    return path


def textfile_checks(tcp_listener: int, closed_port: int) -> list[dict]:
    return [
        {"address": f"127.0.0.1:{tcp_listener}", "name": "app"},
        {"address": f"127.0.0.1:{closed_port}", "name": "db", "timeout": "1s"},
        {"address": f"127.0.0.1:{closed_port}", "name": "metrics", "mandatory": False, "timeout": "1s"},
        {"address": f"127.0.0.1:{tcp_listener}", "name": 'quote " back\\slash\nnewline'},
    ]


def test_prometheus_file_passes_promtool_and_has_one_series_per_state(
    run_module, tmp_path, tcp_listener, closed_port
):
    prom = tmp_path / "health_check.prom"
    result = run_module({"tcp": textfile_checks(tcp_listener, closed_port),
                         "prometheus_path": str(prom)}).single_json_object()
    assert prom.exists(), result
    text = prom.read_text()

    lint = subprocess.run([host_tool("promtool"), "check", "metrics"], input=text,
                          capture_output=True, text=True, timeout=30)
    assert lint.returncode == 0 and lint.stdout.strip() == "" and lint.stderr.strip() == "", (
        f"promtool rc={lint.returncode}\n{lint.stdout}{lint.stderr}\n--- file ---\n{text}")
    # node_exporter / systemd_exporter style: one series per state, the current one is 1.
    for state in ("pass", "warn", "fail", "skip"):
        assert f'health_check_status{{kind="tcp",name="app",mandatory="true",state="{state}"}} ' \
            f'{1 if state == "pass" else 0}' in text, text
    assert 'health_check_status{kind="tcp",name="db",mandatory="true",state="fail"} 1' in text, text
    assert "health_check_info{version=" in text, text
    assert "_summary_" not in text, text


@contextlib.contextmanager
def node_exporter(textfile_dir: Path) -> Iterator[str]:
    """node_exporter with only the textfile collector, on a free port; yields its metrics URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen(
        [host_tool("prometheus-node-exporter"), "--collector.disable-defaults",
         "--collector.textfile", f"--collector.textfile.directory={textfile_dir}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(url, timeout=2).read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"node_exporter did not start: {proc.stderr.read() if proc.stderr else ''}")
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_node_exporter_textfile_collector_reads_the_file_without_errors(
    run_module, tmp_path, tcp_listener, closed_port
):
    textfile_dir = tmp_path / "textfile"
    textfile_dir.mkdir()
    result = run_module({"tcp": textfile_checks(tcp_listener, closed_port),
                         "prometheus_path": str(textfile_dir / "health_check.prom")}).single_json_object()
    assert result.get("artifacts"), result

    with node_exporter(textfile_dir) as url:
        scraped = urllib.request.urlopen(url, timeout=10).read().decode()
    assert "node_textfile_scrape_error 0" in scraped, scraped
    assert 'health_check_status{kind="tcp",mandatory="true",name="app",state="pass"} 1' in scraped, scraped
    assert "health_check_info{" in scraped, scraped


def test_junit_is_valid_xml_for_any_check_name_and_advisory_failures_are_skipped(
    run_module, tmp_path, tcp_listener, closed_port
):
    junit = tmp_path / "health.xml"
    odd = f"api <v2> & 'edge' {XML_FORBIDDEN} end"
    result = run_module({
        "tcp": [
            {"address": f"127.0.0.1:{tcp_listener}", "name": odd},
            {"address": f"127.0.0.1:{closed_port}", "name": "db", "timeout": "1s"},
            {"address": f"127.0.0.1:{closed_port}", "name": "metrics", "mandatory": False, "timeout": "1s"},
        ],
        "junit_path": str(junit),
    }).single_json_object()
    assert junit.exists(), result

    xml = junitparser.JUnitXml.fromfile(str(junit))
    cases = {case.name: case for suite in xml for case in suite}
    assert len(cases) == 3, cases
    odd_name = next(name for name in cases if name.startswith("api <v2> & 'edge' "))
    assert odd_name.endswith(" end") and not any(c in odd_name for c in XML_FORBIDDEN), repr(odd_name)
    assert cases[odd_name].is_passed
    (mandatory,) = cases["db"].result
    assert isinstance(mandatory, junitparser.Failure), mandatory
    (advisory,) = cases["metrics"].result
    assert isinstance(advisory, junitparser.Skipped), advisory
    assert "cannot connect" in (advisory.message or ""), advisory.message


def test_msg_lists_at_most_ten_failures(run_module, closed_port):
    result = run_module({"tcp": [{"address": f"127.0.0.1:{closed_port}", "name": f"svc{i:02}",
                                  "timeout": "1s"} for i in range(30)]}).single_json_object()
    assert result["failed"] is True
    assert "and 20 more" in result["msg"], result["msg"]
    assert result["msg"].count("tcp:svc") == 10, result["msg"]
    assert len(result["checks"]) == 30
