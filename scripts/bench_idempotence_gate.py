#!/usr/bin/env python3
"""Benchmark: the idempotence gate (scripts/verify_idempotence.sh) against Molecule's own
idempotence check, on the same roles, in one run.

1. Fixture catch table. For every fixture role of tests/idempotence_gate/fixtures/roles, the
   real `molecule converge` + `molecule idempotence` (a delegated-driver scenario generated in a
   temp dir that applies only that role; Molecule's idempotence step converges again and fails
   when the recap reports changed tasks) against the gate's verdict on the same role. The
   roles that only touch their scratch dir run on localhost (ansible_connection=local, scratch
   under a temp dir); the two that need a test machine (fault_gpu_only: a GPU device node;
   fault_declared_side_effect: writes under /var/lib) run on one fresh gpu-flavoured
   python machine of the test bed, Molecule first, then the gate, each on its own machine.
2. Time per core role (--timing): on fresh python-flavoured gpu machines of the test bed (the
   gate's `gpu` flavour), the gate's wall time for one role (`--flavours gpu`, its own machine
   boot included) against Molecule's converge + idempotence on the same role on a machine
   booted the same way (boot timed separately and added, so that both columns include one
   boot). --rounds N (default 1: the machine is shared and loaded) gives min/median/max.

Prints the table(s) and writes ci-artifacts/bench/idempotence_gate.json and .md.

    scripts/bench_idempotence_gate.py                       fixture catch table
    scripts/bench_idempotence_gate.py --timing [--rounds N] [core/sysctl ...]

Needs root for the test-bed machines and the shipped probe (`make install`).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = REPO_ROOT / ".venv" / "bin"
GATE = REPO_ROOT / "scripts" / "verify_idempotence.sh"
FIXTURE_ROLES = REPO_ROOT / "tests" / "idempotence_gate" / "fixtures" / "roles"
PROBE_LIBRARY = REPO_ROOT / "roles" / "ops" / "health_check" / "library"
RESULT_JSON = REPO_ROOT / "ci-artifacts" / "bench" / "idempotence_gate.json"
RESULT_MD = REPO_ROOT / "ci-artifacts" / "bench" / "idempotence_gate.md"
sys.path.insert(0, str(REPO_ROOT / "scripts"))

# Fault class of each fixture role, as the table prints it.
FAULT_CLASS = {
    "fault_always_changed": "task reports changed every run (template with a timestamp)",
    "fault_command_without_changed_when": "command without changed_when",
    "fault_counter_script": "hidden: counter file bumped behind changed_when: false",
    "fault_declared_side_effect": "hidden: file outside any task's path (declared extra state)",
    "fault_gpu_only": "hidden, environment-specific: only on GPU hosts",
    "fault_hidden_content": "hidden: content rewritten behind changed_when: false",
    "fault_hidden_mode": "hidden: mode flipped behind changed_when: false",
    "fault_mtime_sort": "hidden: file rewritten with same content (mtime only)",
    "fault_mtime_touch": "touch on every run (mtime)",
    "trap_atime_reads": "clean trap: reads bump atime only",
    "trap_creates": "clean trap: command with creates:",
    "trap_declared_volatile": "clean trap: declared volatile cache (ignore with reason)",
    "trap_force_false": "clean trap: copy force: false",
    "trap_handler_once": "clean trap: handler fires on run 1 only",
    "trap_random_secret": "clean trap: random secret generated once",
    "trap_readonly_command": "clean trap: read-only command, changed_when: false",
}
MACHINE_FIXTURES = ("fault_declared_side_effect", "fault_gpu_only")
RECAP_CHANGED = re.compile(r"changed=[1-9]")


def tool_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "MOLECULE_"))}
    env.update(
        PATH=f"{VENV_BIN}:{env.get('PATH', '/usr/bin:/bin')}",
        NO_COLOR="1",
        ANSIBLE_HOME=str(home / "ansible-home"),
        ANSIBLE_NOCOLOR="1",
    )
    return env


def run(cmd: list[str], cwd: Path, env: dict[str, str], timeout_s: float) -> tuple[int, str, float]:
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=timeout_s)
    return proc.returncode, proc.stdout, time.monotonic() - started


# --- Molecule -------------------------------------------------------------------------------


def molecule_project(workdir: Path, role: str, roles_path: Path, hosts_yaml: str,
                     inventory: Path | None, play_vars: dict[str, Any], become: bool,
                     gather_facts: bool) -> Path:
    """A throwaway project dir with one scenario `bench` that converges only `role`."""
    scenario = workdir / "molecule" / "bench"
    scenario.mkdir(parents=True)
    provisioner: dict[str, Any] = {
        "name": "ansible",
        "env": {
            "ANSIBLE_ROLES_PATH": str(roles_path),
            "ANSIBLE_LIBRARY": str(PROBE_LIBRARY),
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_HOST_KEY_CHECKING": "False",
        },
    }
    if inventory is not None:
        provisioner["inventory"] = {"links": {"hosts": str(inventory)}}
        platform = "bench-placeholder"
    else:
        provisioner["inventory"] = {"host_vars": {"localhost": {
            "ansible_connection": "local",
            "ansible_python_interpreter": "{{ ansible_playbook_python }}",
        }}}
        platform = "localhost"
    config = {
        "driver": {"name": "default", "options": {"managed": False}},
        "platforms": [{"name": platform}],
        "provisioner": provisioner,
        "scenario": {"test_sequence": ["converge", "idempotence"]},
    }
    # JSON is YAML: no YAML writer needed.
    (scenario / "molecule.yml").write_text(json.dumps(config, indent=2) + "\n")
    play = [{
        "name": f"Converge {role}",
        "hosts": hosts_yaml,
        "gather_facts": gather_facts,
        "become": become,
        "vars": play_vars,
        "roles": [{"role": role}],
    }]
    (scenario / "converge.yml").write_text(json.dumps(play, indent=2) + "\n")
    return workdir


def molecule_check(project: Path, env: dict[str, str], timeout_s: float = 900) -> dict[str, Any]:
    """`molecule converge` then `molecule idempotence`; the verdict is Molecule's own."""
    rc1, out1, t1 = run([str(VENV_BIN / "molecule"), "converge", "-s", "bench"], project, env, timeout_s)
    if rc1 != 0:
        return {"verdict": "error", "converge_s": t1, "idempotence_s": 0.0,
                "detail": "converge failed: " + out1[-1500:]}
    rc2, out2, t2 = run([str(VENV_BIN / "molecule"), "idempotence", "-s", "bench"], project, env, timeout_s)
    # Molecule's own list of the tasks that changed ("* [host] => role : task"; its console
    # drops the "[host]" part as markup).
    changed = sorted(set(re.findall(r"^\*\s+(?:\[[^\]]*\]\s*)?=> (.+)$", out2, re.MULTILINE)))
    recap_changed = bool(RECAP_CHANGED.search(out2))
    if rc2 == 0:
        verdict = "idempotent"
    elif "Idempotence test failed" in out2:
        verdict = "not idempotent"
    else:
        verdict = "error"
    result = {"verdict": verdict, "converge_s": t1, "idempotence_s": t2,
              "changed_tasks": changed, "recap_changed": recap_changed}
    if verdict == "error":
        result["detail"] = out2[-1500:]
    return result


# --- the gate -------------------------------------------------------------------------------


def gate_check(args: list[str], artifacts: Path, env: dict[str, str],
               timeout_s: float = 1800) -> tuple[int, str, float, dict[str, Any]]:
    rc, out, elapsed = run([str(GATE), "--artifacts", str(artifacts), "--no-history", *args],
                           REPO_ROOT, env, timeout_s)
    docs: dict[str, Any] = {}
    summary = artifacts / "summary.json"
    if summary.is_file():
        for row in json.loads(summary.read_text())["roles"]:
            name = row["role"]
            doc_path = artifacts / f"{name.replace('/', '.')}.json"
            doc = json.loads(doc_path.read_text()) if doc_path.is_file() else {}
            docs[name] = {
                "verdict": row["verdict"],
                "changed_tasks": [t.get("location") for t in doc.get("changed_tasks", [])],
                "drift": [{"path": d.get("path"), "kind": d.get("kind")} for d in doc.get("drift", [])],
                "duration_s": doc.get("duration_s"),
            }
    return rc, out, elapsed, docs


def local_inventory(path: Path) -> Path:
    path.write_text(
        "all:\n  hosts:\n    localhost:\n      ansible_connection: local\n"
        '      ansible_python_interpreter: "{{ ansible_playbook_python }}"\n'
    )
    return path


# --- part 1: the fixture catch table --------------------------------------------------------


def catch_table(workdir: Path, with_machines: bool) -> list[dict[str, Any]]:
    roles = sorted(p.name for p in FIXTURE_ROLES.iterdir() if (p / "tasks").is_dir())
    local = [r for r in roles if r not in MACHINE_FIXTURES]
    env = tool_env(workdir)
    rows: dict[str, dict[str, Any]] = {}

    print(f"gate: {len(local)} fixture roles on localhost, one batch ...", flush=True)
    rc, out, elapsed, docs = gate_check(
        ["-i", str(local_inventory(workdir / "local.yml")), "--roles-path", str(FIXTURE_ROLES),
         "-e", f"fixture_root={workdir / 'gate-scratch'}", "--no-facts", "--jobs", "3", *local],
        workdir / "gate-evidence", env)
    if not docs:
        raise SystemExit(f"the gate produced no summary (rc={rc}):\n{out[-4000:]}")
    print(f"gate: done in {elapsed:.1f}s (rc={rc})", flush=True)
    for role in local:
        project = molecule_project(
            workdir / "mol" / role, role, FIXTURE_ROLES, "all", None,
            {"fixture_root": str(workdir / "molecule-scratch")}, become=False, gather_facts=False)
        mol = molecule_check(project, env)
        print(f"molecule: {role}: {mol['verdict']}", flush=True)
        rows[role] = {"role": role, "target": "localhost", "molecule": mol, "gate": docs.get(role, {"verdict": "missing"})}

    if with_machines:
        from idempotence.machines import fresh_machines

        for role in MACHINE_FIXTURES:
            print(f"molecule: {role} on a fresh gpu-flavoured machine ...", flush=True)
            inventory = workdir / f"{role}-hosts.ini"
            control = tempfile.mkdtemp(prefix="benchcp-", dir="/tmp")
            menv = dict(env, ANSIBLE_SSH_CONTROL_PATH_DIR=control)
            try:
                with fresh_machines(f"bgm{os.getpid() % 100000}", ["gpu"], inventory):
                    project = molecule_project(
                        workdir / "mol" / role, role, FIXTURE_ROLES, "idempotence", inventory,
                        {}, become=True, gather_facts=False)
                    mol = molecule_check(project, menv)
            finally:
                shutil.rmtree(control, ignore_errors=True)
            print(f"molecule: {role}: {mol['verdict']}", flush=True)
            rows[role] = {"role": role, "target": "fresh gpu-flavoured machine", "molecule": mol}
        print("gate: machine fixtures on fresh gpu-flavoured machines ...", flush=True)
        rc, out, elapsed, docs = gate_check(
            ["--roles-path", str(FIXTURE_ROLES), "--flavours", "gpu", "--no-facts", *MACHINE_FIXTURES],
            workdir / "gate-machine-evidence", env)
        if not docs:
            raise SystemExit(f"the gate produced no summary (rc={rc}):\n{out[-4000:]}")
        for role in MACHINE_FIXTURES:
            rows[role]["gate"] = docs.get(role, {"verdict": "missing"})

    table = []
    for role in roles:
        if role not in rows:
            continue
        row = rows[role]
        row["fault_class"] = FAULT_CLASS.get(role, "")
        row["expected"] = "not idempotent" if role.startswith("fault_") else "idempotent"
        row["molecule_right"] = row["molecule"]["verdict"] == row["expected"]
        row["gate_right"] = row["gate"]["verdict"] == row["expected"]
        table.append(row)
    return table


def catch_markdown(table: list[dict[str, Any]]) -> str:
    def cell(verdict: str, right: bool) -> str:
        word = {"not idempotent": "caught" if right else "flagged (false alarm)",
                "idempotent": "passes" if right else "MISSED"}.get(verdict, verdict)
        return word

    lines = ["| role | fault class | Molecule | gate |", "|---|---|---|---|"]
    for row in table:
        lines.append(f"| {row['role']} | {row['fault_class']} | "
                     f"{cell(row['molecule']['verdict'], row['molecule_right'])} | "
                     f"{cell(row['gate']['verdict'], row['gate_right'])} |")
    faults = [r for r in table if r["expected"] == "not idempotent"]
    traps = [r for r in table if r["expected"] == "idempotent"]
    lines.append("")
    lines.append(
        f"Faults caught: Molecule {sum(r['molecule_right'] for r in faults)}/{len(faults)}, "
        f"gate {sum(r['gate_right'] for r in faults)}/{len(faults)}. "
        f"Clean traps passed: Molecule {sum(r['molecule_right'] for r in traps)}/{len(traps)}, "
        f"gate {sum(r['gate_right'] for r in traps)}/{len(traps)}."
    )
    return "\n".join(lines)


# --- part 2: time per core role -------------------------------------------------------------


def spread(values: list[float]) -> dict[str, float]:
    return {"min": min(values), "median": statistics.median(values), "max": max(values), "n": len(values)}


def timing(workdir: Path, roles: list[str], rounds: int) -> list[dict[str, Any]]:
    from idempotence.machines import fresh_machines

    env = tool_env(workdir)
    results = []
    for role in roles:
        gate_s: list[float] = []
        mol_s: list[float] = []
        mol_boot_s: list[float] = []
        verdicts: dict[str, str] = {}
        for index in range(rounds):
            tag = f"{role.split('/')[-1]}-{index}"
            rc, out, elapsed, docs = gate_check(
                ["--flavours", "gpu", role], workdir / f"gate-{tag}", env)
            verdicts["gate"] = docs.get(role, {}).get("verdict", f"error rc={rc}")
            gate_s.append(elapsed)
            print(f"timing: gate {role} round {index + 1}: {elapsed:.1f}s ({verdicts['gate']})", flush=True)

            inventory = workdir / f"mol-{tag}.ini"
            control = tempfile.mkdtemp(prefix="benchcp-", dir="/tmp")
            menv = dict(env, ANSIBLE_SSH_CONTROL_PATH_DIR=control)
            booting = time.monotonic()
            try:
                with fresh_machines(f"btm{os.getpid() % 100000}", ["gpu"], inventory):
                    boot = time.monotonic() - booting
                    project = molecule_project(
                        workdir / f"mol-{tag}", role, REPO_ROOT / "roles", "idempotence",
                        inventory, {}, become=True, gather_facts=True)
                    mol = molecule_check(project, menv)
            finally:
                shutil.rmtree(control, ignore_errors=True)
            verdicts["molecule"] = mol["verdict"]
            mol_boot_s.append(boot)
            mol_s.append(boot + mol["converge_s"] + mol["idempotence_s"])
            print(f"timing: molecule {role} round {index + 1}: boot {boot:.1f}s + converge "
                  f"{mol['converge_s']:.1f}s + idempotence {mol['idempotence_s']:.1f}s "
                  f"({mol['verdict']})", flush=True)
        results.append({"role": role, "gate_s": spread(gate_s), "molecule_s": spread(mol_s),
                        "molecule_boot_s": spread(mol_boot_s), "verdicts": verdicts})
    return results


def timing_markdown(rows: list[dict[str, Any]], rounds: int) -> str:
    lines = [
        f"Wall time per role, seconds, min/median/max over {rounds} round(s), one fresh "
        "python-flavoured gpu machine each (boot included in both columns).",
        "",
        "| role | gate | Molecule converge + idempotence | gate / Molecule (median) | verdicts |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        g, m = row["gate_s"], row["molecule_s"]
        lines.append(
            f"| {row['role']} | {g['min']:.1f} / {g['median']:.1f} / {g['max']:.1f} | "
            f"{m['min']:.1f} / {m['median']:.1f} / {m['max']:.1f} | "
            f"{g['median'] / m['median']:.2f} | gate {row['verdicts']['gate']}, "
            f"Molecule {row['verdicts']['molecule']} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("roles", nargs="*", metavar="ROLE",
                        help="core roles for --timing (default: every role under roles/core)")
    parser.add_argument("--timing", action="store_true",
                        help="also time the gate against Molecule per core role")
    parser.add_argument("--rounds", type=int, default=1, metavar="N",
                        help="rounds per core role for --timing (default 1)")
    parser.add_argument("--no-machine-fixtures", action="store_true",
                        help="leave out the two fixture roles that need a test machine")
    parser.add_argument("--no-write", action="store_true", help="print only; write no artifacts")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error(f"--rounds: expected a number >= 1, got {args.rounds}")
    if not (PROBE_LIBRARY / "idempotence_probe").is_file():
        print(f"{PROBE_LIBRARY}/idempotence_probe is missing: run `make install` first", file=sys.stderr)
        return 2
    if not (VENV_BIN / "molecule").is_file():
        print(f"{VENV_BIN}/molecule is missing: run `make bootstrap` first", file=sys.stderr)
        return 2
    needs_root = args.timing or not args.no_machine_fixtures
    if needs_root and os.geteuid() != 0:
        print("test-bed machines need root: run as root, or pass --no-machine-fixtures "
              "without --timing", file=sys.stderr)
        return 2
    core = sorted(f"core/{p.name}" for p in (REPO_ROOT / "roles" / "core").iterdir() if (p / "tasks").is_dir())
    unknown = [r for r in args.roles if r not in core]
    if unknown:
        parser.error(f"ROLE: expected core roles ({', '.join(core)}), got {', '.join(unknown)}")

    workdir = Path(tempfile.mkdtemp(prefix="bench-idem-gate-"))
    try:
        started = time.monotonic()
        table = catch_table(workdir, with_machines=not args.no_machine_fixtures)
        md = ["# Idempotence gate against Molecule", "",
              "Molecule: the real `molecule converge` + `molecule idempotence` (delegated driver, "
              "a scenario generated per role that applies only that role; the idempotence step "
              "fails when the second converge's recap reports changed tasks). Gate: "
              "scripts/verify_idempotence.sh on the same role and target.", "",
              "## Fixture catch table", "", catch_markdown(table)]
        timings: list[dict[str, Any]] = []

        def write() -> str:
            text = "\n".join(md) + "\n"
            if timings:
                text += "\n## Time per core role\n\n" + timing_markdown(timings, args.rounds) + "\n"
            if args.no_write:
                return text
            commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT,
                                    capture_output=True, text=True).stdout.strip()
            doc = {
                "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "git_commit": commit,
                "molecule_method": "real molecule converge + molecule idempotence (delegated driver)",
                "duration_s": time.monotonic() - started,
                "catch_table": table,
                "timing": {"rounds": args.rounds, "roles": timings} if args.timing else None,
            }
            RESULT_JSON.parent.mkdir(parents=True, exist_ok=True)
            # Scratch paths name a temp dir that is gone after the run.
            RESULT_JSON.write_text(json.dumps(doc, indent=2).replace(str(workdir), "$WORKDIR") + "\n")
            RESULT_MD.write_text(text)
            return text

        # Written after the table and after each timed role: a long run interrupted keeps
        # what it measured.
        text = write()
        if args.timing:
            for role in args.roles or core:
                timings += timing(workdir, [role], args.rounds)
                text = write()
        print()
        print(text)
        if not args.no_write:
            print(f"wrote {RESULT_JSON.relative_to(REPO_ROOT)} and {RESULT_MD.relative_to(REPO_ROOT)}")
        wrong = [r["role"] for r in table if not r["gate_right"]]
        if wrong:
            print(f"the gate got these fixtures wrong: {', '.join(wrong)}", file=sys.stderr)
            return 1
        return 0
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
