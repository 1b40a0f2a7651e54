#!/usr/bin/env python3
"""Assembles the `fleetverify.ops` Ansible collection from this repository and builds its
tarball with `ansible-galaxy collection build`.

The repository keeps the role layout (roles/ops/health_check/); the collection is made from it
on each build, never maintained as a second copy:

    galaxy.yml, meta/runtime.yml, README.md, CHANGELOG.md (the repository's), SHA256SUMS
    plugins/modules/<module>          the x86_64 binary, and <module>.yml, its sidecar docs
    plugins/binaries/<arch>/<module>  the other architectures (aarch64)
    plugins/action/<module>.py        per binary module: the cached-binary action plugin
    plugins/action/<other>.py         the role's other action plugins, as they are
    plugins/plugin_utils/             the role's plugin_utils (the cached-binary implementation)
    plugins/filter/                   the role's filter_plugins, if it has any
    plugins/doc_fragments/            docs/doc_fragments/*.py of the repository, the docs shared
                                      by the modules' sidecar docs (names made FQCNs there)
    roles/health_check/               the role without its plugins, tasks using FQCNs

The version is the workspace's (Cargo.toml [workspace.package] version), which is also every
module's `--version`; the build refuses binaries that report another one.

    scripts/build_collection.py --output-dir dist [--modules "health_check ..."]

`make dist` runs it after `make install-all` on a clean tree.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
NAMESPACE = "fleetverify"
NAME = "ops"
ROLE_SOURCE = REPO_ROOT / "roles" / "ops" / "health_check"
ROLE_NAME = "health_check"
CACHED_BINARY = "cached_binary.py"
# Parts of the role that become collection plugins (or are build output) and so are not copied
# into roles/health_check.
ROLE_PLUGIN_DIRS = {"library", "binaries", "action_plugins", "plugin_utils", "filter_plugins", "module_utils"}
ELF_MACHINES = {62: "x86_64", 183: "aarch64"}


class BuildError(RuntimeError):
    pass


def workspace_version() -> str:
    text = (REPO_ROOT / "Cargo.toml").read_text()
    section = re.search(r"^\[workspace\.package\]\s*$(.*?)(?=^\[|\Z)", text, re.MULTILINE | re.DOTALL)
    match = section and re.search(r'^version\s*=\s*"([^"]+)"', section.group(1), re.MULTILINE)
    if not match:
        raise BuildError("Cargo.toml has no [workspace.package] version")
    return match.group(1)


def makefile_modules() -> list[str]:
    match = re.search(r"^MODULES\s*:=\s*(.+)$", (REPO_ROOT / "Makefile").read_text(), re.MULTILINE)
    if not match:
        raise BuildError("no `MODULES :=` line in the Makefile")
    return match.group(1).split()


def elf_architecture(path: Path) -> str | None:
    header = path.read_bytes()[:20]
    if len(header) < 20 or header[:4] != b"\x7fELF" or header[5] != 1:
        return None
    return ELF_MACHINES.get(int.from_bytes(header[18:20], "little"))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def module_binaries(module: str) -> dict[str, Path]:
    """arch -> binary, as `make install-all` left them: library/<module> (x86_64) and
    binaries/<arch>/<module> beside library/."""
    found: dict[str, Path] = {}
    candidates = [ROLE_SOURCE / "library" / module]
    candidates += sorted((ROLE_SOURCE / "binaries").glob(f"*/{module}"))
    for path in candidates:
        if not path.is_file():
            continue
        arch = elf_architecture(path)
        if arch is None:
            raise BuildError(f"{path} is not an x86_64 or aarch64 ELF binary")
        if path.parent.name in ELF_MACHINES.values() and path.parent.name != arch:
            raise BuildError(f"{path} is an {arch} binary in the {path.parent.name} directory")
        found.setdefault(arch, path)
    missing = sorted(set(ELF_MACHINES.values()) - set(found))
    if missing:
        raise BuildError(f"{module}: no binary for {', '.join(missing)}: run `make install-all`")
    return found


def check_version(module: str, binary: Path, version: str) -> None:
    proc = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=30)
    if proc.returncode != 0 or version not in proc.stdout.split():
        raise BuildError(
            f"{binary} --version says {proc.stdout.strip()!r} (rc {proc.returncode}); "
            f"the collection is {version}"
        )


def filter_names(path: Path) -> list[str]:
    """The filters a filter plugin file defines (its FilterModule().filters())."""
    spec = importlib.util.spec_from_file_location(f"_filters_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return sorted(module.FilterModule().filters())


def to_fqcn(text: str, plugins: list[str], filters: list[str]) -> str:
    """Task keys naming our plugins (`health_check:`) and our filters (`| deployment_health`)
    rewritten to their FQCNs."""
    prefix = f"{NAMESPACE}.{NAME}."
    for plugin in plugins:
        text = re.sub(rf"^(\s*(?:-\s+)?){re.escape(plugin)}:(?=\s|$)", rf"\g<1>{prefix}{plugin}:",
                      text, flags=re.MULTILINE)
    for name in filters:
        text = re.sub(rf"\|\s*{re.escape(name)}\b", f"| {prefix}{name}", text)
    return text


GALAXY_YML = """\
---
namespace: {namespace}
name: {name}
version: {version}
readme: README.md
authors:
  - Ops team
description: >-
  Static Rust binary modules for post-deploy host verification (health_check and the other
  modules of this repository) for x86_64 and aarch64 hosts without Python, an action plugin
  that sends each binary to a host once, and the health_check role.
license:
  - Apache-2.0
tags:
  - monitoring
  - health
  - deploy
  - verification
dependencies: {{}}
repository: {repository}
build_ignore:
  - "*.tar.gz"
  - "__pycache__"
"""

RUNTIME_YML = """\
---
requires_ansible: ">=2.15.0"
"""

README = """\
# {namespace}.{name}

Binary modules for post-deploy host verification, built from the fleet-verify repository
(version {version}). Each module ships as a static binary for x86_64 (`plugins/modules/`) and
aarch64 (`plugins/binaries/aarch64/`); the action plugin of the same name picks the one for the
host's architecture, keeps a copy on the host under
`/var/cache/fleetverify.ops/<module>-<sha256>` (or `~/.cache/fleetverify.ops` for a non-root
user) and sends it again only when it changed. Hosts need no Python.

Modules: {modules}. Role: `{namespace}.{name}.{role}`.

```yaml
- name: Verify the fleet after a deploy
  hosts: fleet
  gather_facts: false
  roles:
    - role: {namespace}.{name}.{role}
```

`SHA256SUMS` lists the checksums of the binaries; `CHANGELOG.md` the changes.
"""

ACTION_STUB = '''\
"""Action plugin of the {module} binary module: picks the binary for the host's architecture
and runs it from a content-addressed cache on the host (see plugin_utils/cached_binary.py)."""

from __future__ import annotations

from ansible_collections.{namespace}.{name}.plugins.plugin_utils.cached_binary import (  # noqa: F401
    ActionModule,
)
'''


def repository_url() -> str:
    match = re.search(r'^repository\s*=\s*"([^"]+)"', (REPO_ROOT / "Cargo.toml").read_text(), re.MULTILINE)
    return match.group(1) if match else "https://example.invalid/fleet-verify"


def assemble(root: Path, version: str, modules: list[str]) -> None:
    plugins = root / "plugins"
    for sub in ("modules", "action", "plugin_utils", "filter", "doc_fragments"):
        (plugins / sub).mkdir(parents=True, exist_ok=True)
    (root / "meta").mkdir()
    (root / "galaxy.yml").write_text(GALAXY_YML.format(
        namespace=NAMESPACE, name=NAME, version=version, repository=repository_url()))
    (root / "meta" / "runtime.yml").write_text(RUNTIME_YML)
    changelog = REPO_ROOT / "CHANGELOG.md"
    if f"## {version}" not in changelog.read_text():
        raise BuildError(f"CHANGELOG.md has no `## {version}` section")
    shutil.copy2(changelog, root / "CHANGELOG.md")

    fragments = [path.stem for path in sorted((REPO_ROOT / "docs" / "doc_fragments").glob("*.py"))]
    sums: list[str] = []
    for module in modules:
        binaries = module_binaries(module)
        docs = ROLE_SOURCE / "library" / f"{module}.yml"
        if not docs.is_file():
            raise BuildError(f"{module}: no sidecar docs {docs.relative_to(REPO_ROOT)}")
        check_version(module, binaries["x86_64"], version)
        for arch, binary in sorted(binaries.items()):
            dest = plugins / "modules" / module if arch == "x86_64" else plugins / "binaries" / arch / module
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(binary, dest)
            dest.chmod(0o755)
            sums.append(f"{sha256(dest)}  {dest.relative_to(root)}")
        (plugins / "modules" / f"{module}.yml").write_text(fragments_to_fqcn(docs.read_text(), fragments))
        (plugins / "action" / f"{module}.py").write_text(
            ACTION_STUB.format(module=module, namespace=NAMESPACE, name=NAME))

    shutil.copyfile(ROLE_SOURCE / "plugin_utils" / CACHED_BINARY, plugins / "plugin_utils" / CACHED_BINARY)
    (plugins / "plugin_utils" / "__init__.py").write_text("")
    # The role's own action plugins (not the cached-binary links) go in as they are.
    action_names = list(modules)
    for plugin in sorted((ROLE_SOURCE / "action_plugins").glob("*.py")):
        if plugin.stem in modules or os.path.realpath(plugin).endswith(os.sep + CACHED_BINARY):
            continue
        shutil.copyfile(plugin, plugins / "action" / plugin.name)
        action_names.append(plugin.stem)
    filters: list[str] = []
    for plugin in sorted((ROLE_SOURCE / "filter_plugins").glob("*.py")):
        shutil.copyfile(plugin, plugins / "filter" / plugin.name)
        filters += filter_names(plugin)
    for fragment in sorted((REPO_ROOT / "docs" / "doc_fragments").glob("*.py")):
        shutil.copyfile(fragment, plugins / "doc_fragments" / fragment.name)

    role = root / "roles" / ROLE_NAME
    for entry in sorted(ROLE_SOURCE.iterdir()):
        if entry.name in ROLE_PLUGIN_DIRS or entry.name.startswith(".") or entry.name == "__pycache__":
            continue
        if entry.is_dir():
            shutil.copytree(entry, role / entry.name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            role.mkdir(parents=True, exist_ok=True)
            shutil.copy2(entry, role / entry.name)
    for sub in ("tasks", "handlers"):
        for path in sorted((role / sub).glob("*.yml")) if (role / sub).is_dir() else []:
            path.write_text(to_fqcn(path.read_text(), action_names, filters))

    (root / "README.md").write_text(README.format(
        namespace=NAMESPACE, name=NAME, version=version, role=ROLE_NAME,
        modules=", ".join(f"`{NAMESPACE}.{NAME}.{m}`" for m in modules)))
    (root / "SHA256SUMS").write_text("\n".join(sums) + "\n")


def fragments_to_fqcn(text: str, fragments: list[str]) -> str:
    """Sidecar docs name the repository's doc fragments by their short names (ansible.cfg's
    `doc_fragment_plugins`); in the collection they are `fleetverify.ops.<name>`."""
    def rewrite(block: re.Match) -> str:
        return re.sub(rf"^(\s*-\s+)({'|'.join(map(re.escape, fragments))})[ \t]*$",
                      rf"\g<1>{NAMESPACE}.{NAME}.\g<2>", block.group(0), flags=re.MULTILINE)
    if not fragments:
        return text
    return re.sub(r"^(\s*)extends_documentation_fragment:\s*\n(?:\1\s+-\s.*\n)+", rewrite, text,
                  flags=re.MULTILINE)


def build(output_dir: Path, modules: list[str], galaxy: str) -> Path:
    version = workspace_version()
    output_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="collection-") as staging:
        root = Path(staging) / NAMESPACE / NAME
        root.mkdir(parents=True)
        assemble(root, version, modules)
        tarball = output_dir / f"{NAMESPACE}-{NAME}-{version}.tar.gz"
        tarball.unlink(missing_ok=True)
        proc = subprocess.run(
            [galaxy, "collection", "build", str(root), "--output-path", str(output_dir), "--force"],
            capture_output=True, text=True,
        )
        if proc.returncode != 0 or not tarball.is_file():
            raise BuildError(f"ansible-galaxy collection build failed:\n{proc.stdout}{proc.stderr}")
    (output_dir / "SHA256SUMS").write_text(f"{sha256(tarball)}  {tarball.name}\n")
    return tarball


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output-dir", type=Path, default=REPO_ROOT / "dist")
    parser.add_argument("--modules", help="space-separated modules (default: the Makefile's MODULES)")
    parser.add_argument("--ansible-galaxy", default=str(REPO_ROOT / ".venv" / "bin" / "ansible-galaxy"))
    args = parser.parse_args()
    modules = args.modules.split() if args.modules else makefile_modules()
    try:
        tarball = build(args.output_dir, modules, args.ansible_galaxy)
    except (BuildError, OSError) as error:
        print(f"build_collection: error: {error}", file=sys.stderr)
        return 1
    print(tarball)
    return 0


if __name__ == "__main__":
    sys.exit(main())
