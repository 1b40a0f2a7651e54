"""A generated Ansible repository for the secrets_gate speed benchmark: YAML group_vars,
host_vars, role defaults and tasks, INI inventories, JSON service configs and dotenv files, with
Vault- and SOPS-encrypted files among them and secrets planted in about one file in 250.

Deterministic: the same seed, file count and size give the same bytes. The planted secrets'
(file, line) are written to `planted.json` beside the tree, so that the benchmark can check
that the scan it times finds them.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import string
from pathlib import Path

VERSION = 1  # bump when the content changes: cached trees are regenerated
ENVS = ["prod", "staging", "dev", "qa", "perf", "dr", "eu", "us"]
ROLES = ["nginx", "postgres", "redis", "app", "haproxy", "node_exporter", "backup", "users",
         "sshd", "ntp", "docker", "kafka", "zookeeper", "elastic", "vault_agent", "cron"]
WORDS = ["alpha", "billing", "cache", "delta", "edge", "front", "gateway", "hub", "ingest",
         "jobs", "kiosk", "ledger", "mailer", "notify", "orders", "portal", "queue", "report",
         "search", "tracker", "upload", "viewer", "worker", "xfer", "yard", "zone"]
ALNUM = string.ascii_letters + string.digits


class Gen:
    """One file's content builder: lines, and the line numbers of planted secrets."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.lines: list[str] = []
        self.planted: list[int] = []
        # About one file in 250 gets one planted secret, at a random place in it (0.6% are
        # chosen; small files often end before their turn comes).
        self.to_plant = rng.random() < 0.006

    def plant_here(self) -> bool:
        """Whether to write the planted secret at this step (at most once per file)."""
        if self.to_plant and self.rng.random() < 0.2:
            self.to_plant = False
            return True
        return False

    def add(self, *lines: str) -> None:
        self.lines.extend(lines)

    def plant(self, line: str) -> None:
        self.lines.append(line)
        self.planted.append(len(self.lines))

    def size(self) -> int:
        return sum(len(line) + 1 for line in self.lines)

    def word(self) -> str:
        return self.rng.choice(WORDS)

    def hexs(self, n: int) -> str:
        return "".join(self.rng.choice("0123456789abcdef") for _ in range(n))

    def rand(self, n: int, alphabet: str = ALNUM) -> str:
        return "".join(self.rng.choice(alphabet) for _ in range(n))

    def uuid(self) -> str:
        h = self.hexs(32)
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def ip(self) -> str:
        return f"10.{self.rng.randint(0, 255)}.{self.rng.randint(0, 255)}.{self.rng.randint(1, 254)}"

    def password(self) -> str:
        """A human password (low entropy, real-looking) or a random one."""
        if self.rng.random() < 0.5:
            return (f"{self.word().capitalize()}_{self.word().capitalize()}"
                    f"{self.rng.randint(1000, 9999)}{self.rng.choice('*!#%')}")
        return self.rand(self.rng.randint(16, 28))


def secret_value(g: Gen) -> tuple[str, str]:
    """(key, value) of a plaintext secret as one line's key and value."""
    kind = g.rng.randrange(6)
    if kind == 0:
        return f"{g.word()}_db_password", g.password()
    if kind == 1:
        return "github_token", "ghp_" + g.rand(36)
    if kind == 2:
        return "aws_access_key_id", "AKIA" + g.rand(16, string.ascii_uppercase + string.digits)
    if kind == 3:
        return "stripe_secret_key", "sk_live_" + g.rand(24)
    if kind == 4:
        return f"{g.word()}_url", f"postgres://app:{g.password()}@db.{g.word()}.internal:5432/app"
    return "slack_token", "xoxb-" + g.rand(12, string.digits) + "-" + g.rand(24)


def yaml_value(g: Gen, indent: str) -> None:
    r = g.rng.random()
    w = g.word()
    if r < 0.12:
        g.add(f"{indent}{w}_port: {g.rng.randint(1024, 65535)}")
    elif r < 0.22:
        g.add(f"{indent}{w}_host: {w}{g.rng.randint(1, 40)}.{g.rng.choice(ENVS)}.internal")
    elif r < 0.32:
        g.add(f"{indent}{w}_password: \"{{{{ vault_{w}_password }}}}\"")
    elif r < 0.38:
        g.add(f"{indent}{w}_enabled: {g.rng.choice(['true', 'false', 'yes', 'no'])}")
    elif r < 0.44:
        g.add(f"{indent}{w}_image: registry.internal/{w}/{g.word()}@sha256:{g.hexs(64)}")
    elif r < 0.48:
        g.add(f"{indent}{w}_commit: {g.hexs(40)}")
    elif r < 0.52:
        g.add(f"{indent}{w}_instance_id: {g.uuid()}")
    elif r < 0.56:
        g.add(f"{indent}{w}_token: \"{{{{ lookup('env', '{w.upper()}_TOKEN') }}}}\"")
    elif r < 0.60:
        g.add(f"{indent}{w}_password_min_length: {g.rng.randint(8, 20)}")
    elif r < 0.63:
        g.add(f"{indent}ssh_authorized_key: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI{g.rand(43)} {w}@ops")
    elif r < 0.68:
        g.add(f"# {w} settings: see docs/{w}.md")
    elif r < 0.74:
        g.add(f"{indent}{w}_users:")
        for _ in range(g.rng.randint(1, 4)):
            g.add(f"{indent}  - name: {g.word()}{g.rng.randint(1, 99)}",
                  f"{indent}    shell: /bin/bash",
                  f"{indent}    groups: [wheel, {g.word()}]")
    elif r < 0.80:
        g.add(f"{indent}{w}_config:",
              f"{indent}  worker_processes: {g.rng.randint(1, 16)}",
              f"{indent}  log_level: {g.rng.choice(['info', 'debug', 'warn'])}",
              f"{indent}  upstream: http://{w}.internal:{g.rng.randint(1024, 9999)}/",
              f"{indent}  timeout: {g.rng.randint(1, 120)}s")
    elif r < 0.85:
        g.add(f"{indent}{w}_motd: |",
              f"{indent}  Welcome to {w} ({g.rng.choice(ENVS)}). Managed by Ansible.",
              f"{indent}  Unauthorised access is prohibited; sessions are logged.")
    elif r < 0.90:
        g.add(f"{indent}{w}_anchor: &{w}{g.rng.randint(0, 999)} {g.word()}-{g.word()}")
    else:
        g.add(f"{indent}{w}_description: \"The {w} service for {g.word()} and {g.word()}\"")


def gen_yaml_vars(g: Gen, target: int) -> None:
    g.add("---")
    while g.size() < target:
        if g.plant_here():
            key, value = secret_value(g)
            g.plant(f"{key}: {value}")
        yaml_value(g, "")


def gen_tasks(g: Gen, target: int) -> None:
    g.add("---")
    while g.size() < target:
        w = g.word()
        g.add(f"- name: Install {w}",
              "  ansible.builtin.package:",
              f"    name: {w}-{g.word()}",
              "    state: present",
              f"  when: {w}_enabled | bool",
              "",
              f"- name: Template {w} config",
              "  ansible.builtin.template:",
              f"    src: {w}.conf.j2",
              f"    dest: /etc/{w}/{w}.conf",
              "    mode: \"0640\"",
              f"  notify: Restart {w}",
              "")


def gen_ini(g: Gen, target: int) -> None:
    while g.size() < target:
        group = g.word()
        g.add(f"[{group}]")
        for i in range(g.rng.randint(3, 12)):
            line = (f"{group}{i:02d} ansible_host={g.ip()} ansible_user=deploy "
                    f"ansible_port={g.rng.choice([22, 2222])}")
            if g.plant_here():
                g.plant(f"{line} ansible_password={g.password()}")
            else:
                g.add(line)
        g.add("", f"[{group}:vars]", f"http_port={g.rng.randint(80, 9000)}",
              f"{group}_release={g.rng.randint(1, 9)}.{g.rng.randint(0, 30)}.{g.rng.randint(0, 9)}", "")


def gen_json(g: Gen, target: int) -> None:
    g.add("{")
    while g.size() < target:
        w = g.word()
        g.add(f'  "{w}_{g.rng.randint(0, 9999)}": {{')
        g.add(f'    "enabled": {g.rng.choice(["true", "false"])},',
              f'    "rollout": {g.rng.randint(0, 100)},',
              f'    "owner": "{g.word()}-team",',
              f'    "checksum": "sha256:{g.hexs(64)}",')
        if g.plant_here():
            key, value = secret_value(g)
            g.plant(f'    "{key}": "{value}",')
        else:
            g.add(f'    "api_key": "{{{{ vault_{w}_api_key }}}}",')
        g.add(f'    "endpoint": "https://{w}.internal/v{g.rng.randint(1, 3)}"', "  },")
    g.lines[-1] = "  }"
    g.add("}")


def gen_dotenv(g: Gen, target: int) -> None:
    while g.size() < target:
        w = g.word().upper()
        r = g.rng.random()
        if g.plant_here():
            key, value = secret_value(g)
            g.plant(f"{key.upper()}={value}")
        elif r < 0.3:
            g.add(f"{w}_HOST={w.lower()}.internal")
        elif r < 0.5:
            g.add(f"{w}_PORT={g.rng.randint(1024, 65535)}")
        elif r < 0.65:
            g.add(f"{w}_PASSWORD=${{{w}_PASSWORD}}")
        elif r < 0.8:
            g.add(f"DATABASE_URL=postgres://app:${{DB_PASSWORD}}@{w.lower()}.internal/app")
        elif r < 0.9:
            g.add(f"# {w} service")
        else:
            g.add(f"{w}_LOG_LEVEL={g.rng.choice(['info', 'debug'])}")


def gen_vault(g: Gen, target: int) -> None:
    g.add("$ANSIBLE_VAULT;1.1;AES256")
    while g.size() < target:
        g.add(g.hexs(80))


def gen_sops(g: Gen, target: int) -> None:
    while g.size() < target - 400:
        w = g.word()
        g.add(f"{w}_password: ENC[AES256_GCM,data:{g.rand(24)}=,iv:{g.rand(43)}=,"
              f"tag:{g.rand(22)}==,type:str]")
    g.add("sops:",
          "    age:",
          "        - recipient: age1" + g.rand(58, string.ascii_lowercase + string.digits),
          "          enc: |",
          "            -----BEGIN AGE ENCRYPTED FILE-----",
          f"            {g.rand(64)}",
          "            -----END AGE ENCRYPTED FILE-----",
          "    lastmodified: \"2026-11-02T10:00:00Z\"",
          f"    mac: ENC[AES256_GCM,data:{g.rand(64)},iv:{g.rand(43)}=,tag:{g.rand(22)}==,type:str]",
          "    unencrypted_suffix: _unencrypted",
          "    version: 3.11.0")


def layout(index: int, rng: random.Random) -> tuple[str, callable]:
    """The relative path and the content generator of file `index`."""
    env = ENVS[index % len(ENVS)]
    block = index // 100
    r = rng.random()
    if r < 0.34:
        return f"inventories/{env}/group_vars/g{block:04d}/vars{index}.yml", gen_yaml_vars
    if r < 0.50:
        return f"inventories/{env}/host_vars/h{block:04d}/host{index}.yml", gen_yaml_vars
    if r < 0.58:
        role = ROLES[index % len(ROLES)]
        return f"roles/{role}/b{block:04d}/defaults/main{index}.yml", gen_yaml_vars
    if r < 0.66:
        role = ROLES[index % len(ROLES)]
        return f"roles/{role}/b{block:04d}/tasks/task{index}.yml", gen_tasks
    if r < 0.76:
        return f"inventories/{env}/hosts/h{block:04d}/hosts{index}.ini", gen_ini
    if r < 0.86:
        return f"services/{env}/s{block:04d}/config{index}.json", gen_json
    if r < 0.97:
        return f"services/{env}/s{block:04d}/app{index}.env", gen_dotenv
    if r < 0.985:
        return f"inventories/{env}/group_vars/g{block:04d}/vault{index}.yml", gen_vault
    return f"inventories/{env}/group_vars/g{block:04d}/secrets{index}.sops.yaml", gen_sops


def generate(root: Path, files: int, total_bytes: int, seed: int) -> dict:
    """Writes the tree under `root/repo` (unless a stamp says it is there already) and returns
    its summary: files, bytes, planted secrets."""
    stamp = root / "stamp.json"
    wanted = {"version": VERSION, "files": files, "bytes": total_bytes, "seed": seed}
    if stamp.is_file():
        summary = json.loads(stamp.read_text())
        if summary.get("wanted") == wanted:
            return summary
    shutil.rmtree(root, ignore_errors=True)
    repo = root / "repo"
    repo.mkdir(parents=True)
    rng = random.Random(seed)
    mean = total_bytes / files
    planted: dict[str, list[int]] = {}
    written = 0
    made_dirs: set[str] = set()
    for index in range(files):
        rel, gen = layout(index, rng)
        target = max(120, int(rng.lognormvariate(0, 0.8) * mean / 1.377))  # E[lognorm(0, .8)]
        g = Gen(rng)
        gen(g, target)
        body = "\n".join(g.lines) + "\n"
        parent = os.path.dirname(rel)
        if parent not in made_dirs:
            (repo / parent).mkdir(parents=True, exist_ok=True)
            made_dirs.add(parent)
        (repo / rel).write_text(body)
        written += len(body)
        if g.planted:
            planted[rel] = g.planted
    summary = {"wanted": wanted, "files": files, "bytes": written,
               "planted": sum(len(v) for v in planted.values())}
    (root / "planted.json").write_text(json.dumps(planted, sort_keys=True))
    stamp.write_text(json.dumps(summary))
    return summary


def subset(root: Path, every: int) -> tuple[Path, int, int]:
    """`root/subset`: hard links to every `every`-th file of the tree (sorted by path), the same
    relative paths; returns it with its file count and bytes."""
    sub = root / f"subset-1-in-{every}"
    repo = root / "repo"
    paths = sorted(p for p in repo.rglob("*") if p.is_file())
    chosen = paths[::every]
    if not sub.is_dir():
        tmp = root / "subset.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        for p in chosen:
            dest = tmp / p.relative_to(repo)
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.link(p, dest)
        tmp.rename(sub)
    return sub, len(chosen), sum(p.stat().st_size for p in chosen)
