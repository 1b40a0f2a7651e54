"""A sample inventory repository in a temp dir, and the documented shell steps run in it.

The repository is the committed layout in `fixtures/sample_repo` (dev/staging/prod
inventories, a playbook that renders a credentials file) made into a git repository, plus
what only exists at run time: fresh age keys and a Vault password in a key directory outside
the repository, and Vault-encrypted `vault.yml` files with random secrets. The steps are the
```bash blocks of docs/deployment/*.md, found by the `<!-- step: NAME -->` line above them and
run with bash, so a test fails when a documented command stops working.

Secrets never reach the test output: every captured output is searched for the planted
values first, and a hit fails the test without showing the output.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURE = Path(__file__).resolve().parent / "fixtures" / "sample_repo"
DOCS = REPO_ROOT / "docs" / "deployment"
MIGRATION_GUIDE = DOCS / "sops-migration.md"
ROTATION_SOP = DOCS / "key-rotation-sop.md"
SECRETCTL_DIR = REPO_ROOT / "scripts" / "secrets"
VENV_BIN = REPO_ROOT / ".venv" / "bin"
ENVIRONMENTS = ("dev", "staging", "prod")
SECRET_KEYS = ("vault_app_db_password", "vault_app_api_token")
STEP_TIMEOUT_S = 180
PREFLIGHT_PLAYBOOK = REPO_ROOT / "playbooks" / "preflight_assertions.yml"
# `make install` puts the module there; SECRETS_GATE_BINARY points at another build.
GATE_BINARY = Path(
    os.environ.get("SECRETS_GATE_BINARY") or REPO_ROOT / "roles" / "ops" / "health_check" / "library" / "secrets_gate"
)

_STEP = re.compile(r"<!-- step: ([a-z0-9-]+) -->\n```bash\n(.*?)\n```", re.S)
_BASH_FENCE = re.compile(r"^```bash$", re.M)


def doc_steps(doc: Path) -> dict[str, str]:
    """The marked bash blocks of a document, by step name."""
    text = doc.read_text()
    steps = dict(_STEP.findall(text))
    unmarked = len(_BASH_FENCE.findall(text)) - len(steps)
    assert unmarked == 0, f"{doc.name}: {unmarked} bash blocks without a `<!-- step: NAME -->` line"
    return steps


@dataclass
class StepRun:
    name: str
    returncode: int
    output: str


@dataclass
class SampleRepo:
    root: Path  # the inventory repository
    keys: Path  # the custodians' key files, outside the repository
    output_dir: Path  # where the sample playbook writes its credentials file
    home: Path
    # env -> key -> value; kept out of repr so that no traceback shows them
    planted: dict[str, dict[str, str]] = field(default_factory=dict, repr=False)
    # secrets_gate's directory, on PATH and ANSIBLE_LIBRARY when set
    gate_dir: Path | None = None

    # -- environment and tools ----------------------------------------------------------------

    def env(self, **extra: str) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "SOPS_"))}
        base.update(
            PATH=f"{SECRETCTL_DIR}{os.pathsep}{VENV_BIN}{os.pathsep}{base.get('PATH', '')}",
            HOME=str(self.home),
            ANSIBLE_CONFIG=str(self.root / "ansible.cfg"),
            ANSIBLE_HOME=str(self.home / ".ansible"),
            ANSIBLE_NOCOLOR="1",
            ANSIBLE_LOCAL_TEMP=str(self.home / ".ansible" / "tmp"),
            PYTHONWARNINGS="ignore::DeprecationWarning",
            SOPS_DISABLE_VERSION_CHECK="1",
            APP_OUTPUT_DIR=str(self.output_dir),
            KEYS_DIR=str(self.keys),
            GIT_AUTHOR_NAME="Sample Operator",
            GIT_AUTHOR_EMAIL="ops@example.invalid",
            GIT_COMMITTER_NAME="Sample Operator",
            GIT_COMMITTER_EMAIL="ops@example.invalid",
        )
        if self.gate_dir is not None:
            base["PATH"] = f"{self.gate_dir}{os.pathsep}{base['PATH']}"
            base["ANSIBLE_LIBRARY"] = str(self.gate_dir)
        base.update(extra)
        return {k: v for k, v in base.items() if v is not None}

    def key_file(self, name: str) -> Path:
        return self.keys / f"age-{name}.key"

    @property
    def vault_password_file(self) -> Path:
        return self.keys / "vault-password"

    def operator_env(self, name: str = "alice", **extra: str) -> dict[str, str]:
        """An operator's shell as the migration guide sets it up (key-files step)."""
        return self.env(
            SOPS_AGE_KEY_FILE=str(self.key_file(name)),
            ANSIBLE_VAULT_PASSWORD_FILE=str(self.vault_password_file),
            CI_KEY_FILE=str(self.key_file("ci")),
            **extra,
        )

    def check_no_secret(self, text: str, what: str) -> None:
        __tracebackhide__ = True  # pytest must not print this frame's arguments
        for env, values in self.planted.items():
            for key, value in values.items():
                if value in text:
                    raise AssertionError(f"{what}: the plaintext of {env}/{key} appears in the output")

    def run(self, argv: list[str], env: dict[str, str], what: str, stdin: str | None = None) -> StepRun:
        __tracebackhide__ = True  # its stdin may be a secret
        proc = subprocess.run(
            argv, cwd=self.root, env=env, input=stdin, capture_output=True, text=True,
            timeout=STEP_TIMEOUT_S, check=False,
        )
        output = proc.stdout + proc.stderr
        self.check_no_secret(output, what)
        return StepRun(what, proc.returncode, output)

    def step(self, doc: Path, name: str, env: dict[str, str], expect_rc: int | None = 0) -> StepRun:
        script = doc_steps(doc)[name]
        result = self.run(["bash", "-euo", "pipefail", "-c", script], env, f"{doc.name} step {name}")
        if expect_rc is not None:
            assert result.returncode == expect_rc, (
                f"{doc.name} step {name!r} exited {result.returncode}, expected {expect_rc}:\n{result.output}"
            )
        return result

    def secretctl(self, *args: str, env: dict[str, str] | None = None) -> StepRun:
        return self.run([str(SECRETCTL_DIR / "secretctl"), *args], env or self.operator_env(), f"secretctl {args[0]}")

    def sops_decrypt_digest(self, path: Path, key_name: str) -> str | None:
        """sha256 of the decrypted document (or None when the key cannot decrypt it)."""
        proc = subprocess.run(
            [str(VENV_BIN / "sops"), "decrypt", "--output-type", "json", str(path)],
            env=self.env(SOPS_AGE_KEY_FILE=str(self.key_file(key_name))),
            capture_output=True, check=False, timeout=60,
        )
        if proc.returncode != 0:
            return None
        document = json.loads(proc.stdout)
        return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()

    def sops_value_digest(self, path: Path, key: str, key_name: str = "alice") -> str:
        proc = subprocess.run(
            [str(VENV_BIN / "sops"), "decrypt", "--extract", json.dumps([key]), str(path)],
            env=self.env(SOPS_AGE_KEY_FILE=str(self.key_file(key_name))),
            capture_output=True, check=True, timeout=60,
        )
        return hashlib.sha256(proc.stdout.strip()).hexdigest()

    def playbook(self, env_name: str, env: dict[str, str]) -> tuple[StepRun, str | None]:
        """Runs the sample deploy; returns the run and the sha256 of the rendered file."""
        rendered = self.output_dir / f"app-{env_name}.ini"
        rendered.unlink(missing_ok=True)
        run = self.run(
            [str(VENV_BIN / "ansible-playbook"), "-i", f"inventories/{env_name}", "playbooks/site.yml"],
            env, f"ansible-playbook {env_name}",
        )
        if not rendered.exists():
            return run, None
        return run, hashlib.sha256(rendered.read_bytes()).hexdigest()

    def expected_rendering(self, env_name: str) -> str:
        """sha256 of the credentials file that the template renders from the planted values."""
        values = self.planted[env_name]
        text = (
            "[database]\n"
            f"environment = {env_name}\n"
            f"user = app_{env_name}\n"
            f"password = {values['vault_app_db_password']}\n"
            "\n"
            "[api]\n"
            f"token = {values['vault_app_api_token']}\n"
        )
        return hashlib.sha256(text.encode()).hexdigest()

    def files(self, env_name: str, pattern: str) -> list[Path]:
        return sorted((self.root / "inventories" / env_name).rglob(pattern))

    def status(self, env_name: str) -> dict[str, int]:
        result = self.secretctl("status", "--env", env_name, "--json")
        assert result.returncode == 0, result.output
        return json.loads(result.output)[0]["counts"]

    def clone(self, base: Path) -> "SampleRepo":
        """A copy of repository, keys and planted values under base (same layout), so that a
        test module prepares the repository once and each test gets its own."""
        copy = SampleRepo(root=base / "repo", keys=base / "keys", output_dir=base / "out", home=base / "home")
        for src, dst in ((self.root, copy.root), (self.keys, copy.keys)):
            shutil.copytree(src, dst, symlinks=True)
        copy.output_dir.mkdir()
        copy.home.mkdir()
        copy.planted = {env: dict(values) for env, values in self.planted.items()}
        copy.gate_dir = self.gate_dir
        return copy

    def git(self, *args: str) -> str:
        return self.run(["git", *args], self.env(), f"git {args[0]}").output


def use_gate(repo: SampleRepo) -> SampleRepo:
    """Puts the built secrets_gate on the repository's PATH and module path (fails, naming the
    make target, when it was not built) and the project's preflight playbook beside site.yml."""
    import pytest

    if not (GATE_BINARY.is_file() and os.access(GATE_BINARY, os.X_OK)):
        pytest.fail(f"{GATE_BINARY} is missing: run `make install` first", pytrace=False)
    gate_dir = repo.home / "gate"
    gate_dir.mkdir(exist_ok=True)
    link = gate_dir / "secrets_gate"
    if not link.exists():
        link.symlink_to(GATE_BINARY)
    repo.gate_dir = gate_dir
    shutil.copy(PREFLIGHT_PLAYBOOK, repo.root / "playbooks" / PREFLIGHT_PLAYBOOK.name)
    return repo


def make_sample_repo(base: Path) -> SampleRepo:
    """The repository before the migration: every environment on Ansible Vault."""
    repo = SampleRepo(root=base / "repo", keys=base / "keys", output_dir=base / "out", home=base / "home")
    shutil.copytree(FIXTURE, repo.root)
    repo.output_dir.mkdir()
    repo.home.mkdir()
    repo.keys.mkdir(mode=0o700)
    repo.vault_password_file.write_text(secrets.token_urlsafe(24) + "\n")
    repo.vault_password_file.chmod(0o600)
    env = repo.env(ANSIBLE_VAULT_PASSWORD_FILE=str(repo.vault_password_file))
    for name in ENVIRONMENTS:
        values = {key: secrets.token_urlsafe(18) for key in SECRET_KEYS}
        repo.planted[name] = values
        document = "".join(f"{key}: {value}\n" for key, value in values.items())
        target = repo.root / "inventories" / name / "group_vars" / "all" / "vault.yml"
        result = repo.run(
            [str(VENV_BIN / "ansible-vault"), "encrypt", "--output", str(target), "-"],
            env, f"ansible-vault encrypt {name}", stdin=document,
        )
        assert result.returncode == 0, result.output
    repo.git("init", "-q", "-b", "main")
    repo.git("add", "--all")
    repo.git("commit", "-q", "-m", "inventory on Ansible Vault")
    return repo


CUSTODIANS = (("alice", "ops"), ("bob", "ops"), ("ci", "ci"))


def set_up_custodians(repo: SampleRepo, env_name: str) -> None:
    """The migration guide's key custody steps for the environment's three custodians."""
    for name, role in CUSTODIANS:
        if not repo.key_file(name).exists():
            key = repo.step(MIGRATION_GUIDE, "custodian-key", repo.env(NAME=name))
            recipient = key.output.strip().splitlines()[-1]
        else:
            recipient = repo.run(
                ["age-keygen", "-y", str(repo.key_file(name))], repo.env(), "age-keygen -y"
            ).output.strip()
        assert recipient.startswith("age1"), "age-keygen -y printed no recipient"
        repo.step(
            MIGRATION_GUIDE, "custodian-add",
            repo.env(ENV=env_name, NAME=name, ROLE=role, RECIPIENT=recipient),
        )


def migrate(repo: SampleRepo, env_name: str) -> None:
    """The migration guide from key custody to the commit, for one environment."""
    set_up_custodians(repo, env_name)
    env = repo.operator_env(ENV=env_name)
    repo.step(MIGRATION_GUIDE, "open-migration", env)
    repo.step(MIGRATION_GUIDE, "convert", env)
    repo.step(MIGRATION_GUIDE, "commit", env)
