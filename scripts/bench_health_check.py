#!/usr/bin/env python3
"""Benchmark one health_check run of a 40-check suite against a real fleet and engine, and the
same 40 checks done with Ansible's own modules.

The suite, with everything healthy (scripts/bench/health_check/suite.py):

    15 systemd units   in a booted systemd-nspawn machine (testbed.machines), read over its
                       D-Bus socket on the host
    10 containers      on a private dockerd (testbed.dockerd), each with a healthcheck that passes
     5 tcp + 5 http    listeners and servers this script starts on 127.0.0.1
     5 disks           local paths, with generous limits (99 %) so that they pass

Measured, in this order (setup is never inside a measurement; measurement.py):

    module                  the binary run by hand, `health_check ARGS.json`: warm-up runs, then
                            measured runs; wall time from this process and the peak RSS of the
                            module process (ru_maxrss via /usr/bin/time)
    ansible-playbook+module playbooks/module.yml: one play on localhost (connection local) with
                            one `health_check:` task carrying the same args
    baseline                playbooks/baseline.yml: the 40 checks with Ansible's own modules:
                            service_facts over SSH on the machine, community.docker.
                            docker_container_info, wait_for, uri, setup (mounts), each followed
                            by assert

Both playbooks run with the same ansible-playbook (from .cache/bench-venv: the full `ansible`
package, for community.docker, on the ansible-core of .venv), the repo's ansible.cfg and a fresh
ANSIBLE_HOME per run (no SSH connection reused between runs), and take the suite as vars
(`-e @FILE`). They run interleaved, after one unmeasured warm-up each, so that background load
on a shared machine hits both alike.

Every run must pass all 40 checks; otherwise the benchmark stops and says which failed. The
figures go to a table on stdout and to ci-artifacts/bench/health_check.json (written
atomically; `--output` writes elsewhere). Missing a target is reported, not hidden; `--strict`
makes it exit 2.

    make bench                                      (builds and installs the module first)
    .venv/bin/python scripts/bench_health_check.py [--runs 10] [--playbook-runs 3]
    .venv/bin/python scripts/bench_health_check.py --quick --output /tmp/hc.json

Needs root (systemd-nspawn, dockerd), the test bed's python-flavoured rootfs (built from the
Debian mirror on a first run) and PyPI on a first run (.cache/bench-venv). The parts live in
scripts/bench/health_check/ (environment, suite, measurement, report, playbooks/).
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

# scripts/ is this script's own directory, first on sys.path: the package beside it imports as
# `bench.health_check`; the test bed is the `testbed` package installed into .venv.
from bench.health_check import RESULT_PATH, BenchmarkError, log
from bench.health_check.measurement import run_benchmark
from bench.health_check.report import (
    build_report,
    missed_targets,
    print_table,
    write_json_atomically,
)
from testbed.errors import TestbedError

QUICK_RUNS = 3
QUICK_PLAYBOOK_RUNS = 1


class Interrupted(BaseException):
    """SIGTERM or SIGHUP: unwinds like Ctrl-C, so that every finally block still runs."""


def _raise_interrupted(signum: int, _frame: Any) -> None:
    raise Interrupted(f"signal {signal.Signals(signum).name}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="measured module runs (default 10)")
    parser.add_argument("--warmup", type=int, default=1, help="module warm-up runs (default 1)")
    parser.add_argument(
        "--playbook-runs",
        type=int,
        default=3,
        help="measured runs of each playbook (default 3; the median is reported)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"a smoke run: --runs {QUICK_RUNS} --playbook-runs {QUICK_PLAYBOOK_RUNS} "
        "(figures too few to publish; combine with --output)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=RESULT_PATH,
        help="where the JSON document goes (default ci-artifacts/bench/health_check.json)",
    )
    parser.add_argument("--strict", action="store_true", help="exit 2 when a target is missed")
    parser.add_argument(
        "--keep-workdir",
        action="store_true",
        help="keep the work dir in /tmp (args, playbook vars, inventory, logs of every run)",
    )
    options = parser.parse_args(argv)
    if options.quick:
        options.runs, options.playbook_runs = QUICK_RUNS, QUICK_PLAYBOOK_RUNS
    if options.runs < 1 or options.playbook_runs < 1 or options.warmup < 0:
        parser.error("--runs and --playbook-runs must be >= 1, --warmup >= 0")
    if options.output.is_dir():
        parser.error(f"--output {options.output} is a directory; name the JSON file")
    return options


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _raise_interrupted)
    try:
        measured = run_benchmark(
            runs=options.runs,
            warmup=options.warmup,
            playbook_runs=options.playbook_runs,
            keep_workdir=options.keep_workdir,
        )
    except (KeyboardInterrupt, Interrupted) as stop:
        log(f"interrupted ({str(stop) or 'Ctrl-C'}); everything started was stopped")
        return 130
    except (
        BenchmarkError,
        TestbedError,
        subprocess.CalledProcessError,
        subprocess.TimeoutExpired,
    ) as error:
        log(f"error: {error}")
        return 1
    report = build_report(measured)
    write_json_atomically(options.output, report)
    print_table(report, options.output)
    missed = missed_targets(report)
    if missed:
        log(f"targets missed: {', '.join(missed)}")
        return 2 if options.strict else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
