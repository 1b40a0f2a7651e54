"""Running ansible-playbook for the gate: our callback plugin enabled, the probe's library on
the module path, the role paths in front, and a time budget that kills the whole process group
when it runs out."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parents[1]
CALLBACK_DIR = PACKAGE_DIR / "callback_plugins"
PLAYBOOK_DIR = PACKAGE_DIR / "playbooks"
# Where `make install` puts the idempotence_probe binary; IDEMPOTENCE_PROBE_LIBRARY names
# another directory (a debug build, a module under development).
PROBE_LIBRARY = Path(
    os.environ.get("IDEMPOTENCE_PROBE_LIBRARY")
    or REPO_ROOT / "roles" / "ops" / "health_check" / "library"
)
VENV_BIN = REPO_ROOT / ".venv" / "bin"


@dataclass
class PlaybookResult:
    returncode: int
    timed_out: bool
    elapsed_s: float
    log_path: Path

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def ansible_env(roles_paths: list[Path], workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    # Keep the caller's ANSIBLE_* settings that do not change what the gate measures.
    for key in ("ANSIBLE_HOME", "ANSIBLE_VAULT_PASSWORD_FILE"):
        if key in os.environ:
            env[key] = os.environ[key]
    callbacks = CALLBACK_DIR
    env.update(
        ANSIBLE_CONFIG=str(REPO_ROOT / "ansible.cfg"),
        ANSIBLE_ROLES_PATH=os.pathsep.join(str(p) for p in [*roles_paths, REPO_ROOT / "roles"]),
        ANSIBLE_LIBRARY=os.pathsep.join([str(PROBE_LIBRARY), str(REPO_ROOT / "library")]),
        ANSIBLE_CALLBACK_PLUGINS=str(callbacks),
        ANSIBLE_CALLBACKS_ENABLED="idempotence_recorder",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_HOST_KEY_CHECKING="False",
        ANSIBLE_RETRY_FILES_ENABLED="False",
        ANSIBLE_LOCAL_TEMP=str(workdir / "ansible-local-tmp"),
        # The role's own SSH control sockets: nothing else that cleans ~/.ansible/cp can cut
        # a run's connections, and parallel roles never share one.
        ANSIBLE_SSH_CONTROL_PATH_DIR=str(workdir / "cp"),
        PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
    )
    return env


def run_playbook(
    playbook: Path,
    inventory: str,
    extra_vars: list[str],
    env: dict[str, str],
    record_file: Path,
    log_file: Path,
    deadline: float,
    limit: str | None = None,
) -> PlaybookResult:
    """Runs one ansible-playbook; `deadline` is a time.monotonic() instant."""
    command = [str(VENV_BIN / "ansible-playbook"), "-i", inventory, str(playbook)]
    if limit:
        command += ["--limit", limit]
    for value in extra_vars:
        command += ["-e", value]
    started = time.monotonic()
    record_file.unlink(missing_ok=True)
    with open(log_file, "w", encoding="utf-8") as log:
        log.write("$ " + " ".join(command) + "\n")
        log.flush()
        process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env={**env, "IDEMPOTENCE_RECORD_FILE": str(record_file)},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        timed_out = False
        try:
            process.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    return PlaybookResult(process.returncode, timed_out, time.monotonic() - started, log_file)


def write_vars(path: Path, values: dict) -> str:
    """Extra vars as a JSON file (types and nulls survive); returns the `-e` argument."""
    path.write_text(json.dumps(values, indent=1, sort_keys=True))
    return f"@{path}"
