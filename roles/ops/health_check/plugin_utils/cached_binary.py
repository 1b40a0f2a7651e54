"""Runs a static binary module from a content-addressed cache on the host.

Every action plugin of this collection (``action_plugins/<module>.py`` in the role,
``plugins/action/<module>.py`` in the built collection) is a two-line file that loads this one
and uses ``CachedBinaryAction``. For a task ``health_check: {...}`` it:

1. finds the module's binaries on the controller, one per CPU architecture: the module file
   Ansible resolves (``library/health_check``) and ``<its dir>/../binaries/<arch>/<module>``
   (``binaries/aarch64/health_check``); the architecture of each is read from its ELF header;
2. runs ONE remote command that answers the host's ``uname -m``, picks the binary for it, checks
   the cached copy ``/var/cache/fleetverify.ops/<module>-<sha256>`` (as root; otherwise
   ``${XDG_CACHE_HOME:-~/.cache}/fleetverify.ops``) by its hash, owner and mode, and, when it is
   good, runs it at once with the args file (from stdin when pipelining is on, so a warm run is
   one round trip and copies nothing);
3. only when the copy is missing or different: transfers the binary once into Ansible's remote
   tmp dir and the same command installs it into the cache (atomic rename) and runs it;
4. when the cache directory cannot be used (read-only, not ours, writable by others, mounted
   ``noexec``): warns and runs the binary from Ansible's remote tmp dir, as Ansible always does.

A task with ``async:`` takes Ansible's own path instead (``_run_async``): the binary for the
host's architecture goes to the remote tmp dir and Ansible's async_wrapper starts it; that
wrapper and async_status are Python modules, so async needs Python on the host.

A host the module cannot run on at all (no binary for its architecture, ``Exec format error``,
``noexec`` tmp) gets a failed result with the reason, never an exception, so a role that merges
every host's result can report it.

Facts are used when gathered (``ansible_facts.architecture``, of the delegated host under
``delegate_to``) to fail early on an architecture without a binary; otherwise the host's
``uname -m`` comes from the same single command that checks the cache, so finding the
architecture costs no round trip of its own.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex

from ansible.module_utils.common.json import Direction, get_module_encoder
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

display = Display()

CACHE_NAME = "fleetverify.ops"
# ELF e_machine -> the architecture name this collection uses (as `uname -m` spells it on Linux).
ELF_MACHINES = {62: "x86_64", 183: "aarch64"}
# `uname -m` answers (and Ansible's ansible_architecture facts) -> architecture.
ARCH_ALIASES = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}
MARK = "@@fleetverify-cache"
# The shell's answer when it cannot execute a file: noexec mount, wrong architecture.
CANNOT_EXECUTE = 126

# One remote command: pick the binary by `uname -m`, check (or install) the cached copy, run it.
# Placeholders are shell-quoted values; the first stdout line is the status line for the
# controller, everything after it is the module's own output.
REMOTE_SCRIPT = """\
umask 022
m={module}
src={source}
args={args}
cleanup={cleanup}
arch=$(uname -m)
case "$arch" in
{cases}
  *) echo "{mark} state=no-binary arch=$arch"; exit 0 ;;
esac
if [ "$(id -u)" = 0 ]; then d=/var/cache/{cache}; else d="${{XDG_CACHE_HOME:-$HOME/.cache}}/{cache}"; fi
b="$d/$m-$sha"
state=hit
if ! mkdir -p "$d" 2>/dev/null || [ ! -w "$d" ]; then
  state=unwritable
elif [ ! -O "$d" ] || [ -n "$(find "$d" -maxdepth 0 -perm /022 2>/dev/null)" ]; then
  state=untrusted
elif [ ! -f "$b" ] || [ ! -O "$b" ] || [ -n "$(find "$b" -perm /022 2>/dev/null)" ] \\
    || [ "$(sha256sum "$b" 2>/dev/null | cut -c1-64)" != "$sha" ]; then
  state=miss
fi
if [ "$state" = miss ] && [ -n "$src" ]; then
  part="$d/.$m-$sha.$$"
  if cp "$src" "$part" 2>/dev/null && chmod 0755 "$part" \\
      && [ "$(sha256sum "$part" | cut -c1-64)" = "$sha" ] && mv -f "$part" "$b"; then
    state=installed
  else
    rm -f "$part"; state=unwritable
  fi
fi
case "$state" in hit|installed) ;; *) echo "{mark} state=$state arch=$arch path=$b"; exit 0 ;; esac
t=
if [ "$args" = - ]; then
  t=$(umask 077; mktemp -d) || {{ echo "{mark} state=no-tmp arch=$arch path=$b"; exit 0; }}
  args="$t/args"
  (umask 077; cat >"$args")
fi
echo "{mark} state=$state arch=$arch path=$b"
{environment} "$b" "$args"
rc=$?
if [ -n "$t" ]; then rm -rf "$t"; else rm -f "$args"; fi
if [ -n "$cleanup" ]; then rm -rf "$cleanup"; fi
exit $rc
"""


def elf_architecture(path: str) -> str | None:
    """The architecture of a little-endian ELF file, or None for anything else."""
    try:
        with open(path, "rb") as binary:
            header = binary.read(20)
    except OSError:
        return None
    if len(header) < 20 or header[:4] != b"\x7fELF" or header[5] != 1:
        return None
    return ELF_MACHINES.get(int.from_bytes(header[18:20], "little"))


def local_binaries(module_path: str, module_name: str) -> dict[str, str]:
    """Architecture -> binary: `<modules dir>/../binaries/<arch>/<module>` first, then the module
    file Ansible resolved. The per-architecture binaries live beside the module dir, not in it:
    Ansible searches the subdirectories of a configured library path for modules too, and would
    find an aarch64 build there under the module's own name."""
    real = os.path.realpath(module_path)
    bases = []
    for base in (os.path.dirname(os.path.abspath(module_path)), os.path.dirname(real)):
        if base not in bases:
            bases.append(base)
    candidates = [
        os.path.join(os.path.dirname(base), "binaries", arch, module_name)
        for base in bases
        for arch in sorted(set(ELF_MACHINES.values()))
    ]
    found: dict[str, str] = {}
    for candidate in candidates + [real]:
        arch = elf_architecture(candidate) if os.path.isfile(candidate) else None
        if arch and arch not in found:
            found[arch] = candidate
    return found


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as binary:
        for block in iter(lambda: binary.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def parse_status(stdout: str) -> tuple[dict[str, str], str]:
    """Splits the status line off the module's output: ({state, arch, path}, rest)."""
    head, _, rest = stdout.partition("\n")
    if not head.startswith(MARK):
        # Login banners or a shell profile's noise before our line: find the line itself.
        index = stdout.find(MARK)
        if index < 0:
            return {}, stdout
        head, _, rest = stdout[index:].partition("\n")
    fields = dict(item.split("=", 1) for item in head[len(MARK):].split() if "=" in item)
    return fields, rest


class CachedBinaryAction(ActionBase):
    """Action plugin for a binary module whose binaries ship per architecture."""

    # No tmp dir up front: a warm run with pipelining needs none (ActionBase.run would make one).
    TRANSFERS_FILES = False
    _requires_connection = True
    # `async:` goes through Ansible's own async_wrapper (see _run_async).
    _supports_async = True
    # The binary for the host's architecture, when _run_async has Ansible send it.
    _async_binary: str | None = None

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        module_name = self._task.action.rsplit(".", 1)[-1]
        if self._task.async_val:
            result.update(self._run_async(module_name, task_vars))
            return result
        try:
            result.update(self._run_module(module_name, task_vars))
        finally:
            if self._connection._shell.tmpdir:
                self._remove_tmp_path(self._connection._shell.tmpdir)
        return result

    # --- where things are --------------------------------------------------------------------

    def _binaries(self, module_name: str) -> dict[str, str]:
        context = self._shared_loader_obj.module_loader.find_plugin_with_context(
            self._task.action, collection_list=self._task.collections
        )
        if not context.resolved or not context.plugin_resolved_path:
            return {}
        return local_binaries(context.plugin_resolved_path, module_name)

    def _fact_architecture(self, task_vars: dict) -> str | None:
        """The host's architecture from gathered facts (the delegated host's under delegate_to)."""
        host_vars = task_vars
        if self._task.delegate_to:
            delegated = task_vars.get("ansible_delegated_vars") or {}
            host_vars = delegated.get(self._task.delegate_to) or {}
        facts = host_vars.get("ansible_facts") or {}
        return facts.get("architecture") or host_vars.get("ansible_architecture")

    # --- running -----------------------------------------------------------------------------

    def _run_module(self, module_name: str, task_vars: dict) -> dict:
        binaries = self._binaries(module_name)
        if not binaries:
            return {"failed": True, "msg": f"no {module_name} binary found on the controller "
                    "(build it with `make install` or install the collection)"}
        have = ", ".join(sorted(binaries))
        fact_arch = self._fact_architecture(task_vars)
        if fact_arch and ARCH_ALIASES.get(fact_arch) not in binaries:
            return self._no_binary(module_name, fact_arch, have)

        hashes = {arch: file_sha256(path) for arch, path in binaries.items()}
        module_args = self._module_args(module_name, task_vars)
        pipelining = self._connection.is_pipelining_enabled()
        args_path = "-"
        if not pipelining:
            tmpdir = self._make_tmp_path()
            args_path = self._connection._shell.join_path(tmpdir, "args")
            self._transfer_data(args_path, module_args)
            self._fixup_perms2([tmpdir, args_path], self._get_remote_user(), execute=False)

        res, status, output = self._cached_run(module_name, hashes, args_path, "", module_args, pipelining)
        state = status.get("state")
        transferred = False
        if state == "miss":
            arch = status.get("arch", "")
            local = binaries[ARCH_ALIASES[arch]]
            source = self._upload(local, module_name)
            transferred = True
            if pipelining:
                args_path = "-"
            res, status, output = self._cached_run(
                module_name, hashes, args_path, source, module_args, pipelining
            )
            state = status.get("state")

        arch = status.get("arch", "")
        cache = {"state": state, "arch": arch, "path": status.get("path"), "transferred": transferred}
        if state == "no-binary":
            return self._no_binary(module_name, arch, have)
        if state in ("hit", "installed"):
            if self._cannot_execute(res, output) and "Exec format error" not in output + res["stderr"]:
                # The cache's file system is mounted noexec: run from the tmp dir instead.
                state = "noexec"
            else:
                return self._result(res, output, cache, module_name, arch)
        if state not in ("unwritable", "untrusted", "noexec", "no-tmp") or ARCH_ALIASES.get(arch) not in binaries:
            return {"failed": True, "msg": f"{module_name}: unexpected answer from the host's cache "
                    f"check (rc {res['rc']}): {res['stdout'][-500:]} {res['stderr'][-500:]}".strip()}
        cache["state"] = state
        self._display_warning(
            f"{module_name}: the binary cache {status.get('path')} on this host is {state}; "
            "sending the module with every run instead"
        )
        return self._tmp_run(module_name, binaries[ARCH_ALIASES[arch]], arch, module_args, cache)

    def _run_async(self, module_name: str, task_vars: dict) -> dict:
        """`async:` on a task: Ansible's own path for binary modules (the binary and its args sent
        to the remote tmp dir, started by async_wrapper, polled by async_status), with the
        binary for the host's architecture. async_wrapper and async_status are Python modules,
        so this needs Python on the host (the cached, Python-free path cannot detach a job)."""
        binaries = self._binaries(module_name)
        if not binaries:
            return {"failed": True, "msg": f"no {module_name} binary found on the controller "
                    "(build it with `make install` or install the collection)"}
        arch = self._fact_architecture(task_vars)
        if not arch:
            res = self._low_level_execute_command("uname -m", sudoable=False)
            arch = res["stdout"].strip()
        if ARCH_ALIASES.get(arch) not in binaries:
            return self._no_binary(module_name, arch, ", ".join(sorted(binaries)))
        self._async_binary = binaries[ARCH_ALIASES[arch]]
        wrap_async = not self._connection.has_native_async
        try:
            result = self._execute_module(task_vars=task_vars, wrap_async=wrap_async)
        finally:
            self._async_binary = None
            if not wrap_async and self._connection._shell.tmpdir:
                self._remove_tmp_path(self._connection._shell.tmpdir)
        return result

    def _configure_module(self, module_name, module_args, task_vars):
        built, path = super()._configure_module(module_name, module_args, task_vars)
        if self._async_binary and built.module_style == "binary":
            # Ansible found the module's default (x86_64) binary; send the host's instead.
            path = self._async_binary
        return built, path

    def _module_args(self, module_name: str, task_vars: dict) -> str:
        module_args = dict(self._task.args)
        self._update_module_args(module_name, module_args, task_vars)
        encoder = get_module_encoder("legacy", Direction.CONTROLLER_TO_MODULE)
        return json.dumps(module_args, cls=encoder)

    def _script(self, module_name: str, hashes: dict, args_path: str, source: str) -> str:
        # The remote tmp dir goes with the run that used it, saving the round trip of a separate
        # removal; a become user other than the login user may not remove it, Ansible does then.
        tmpdir = self._connection._shell.tmpdir
        cleanup = tmpdir if tmpdir and not self._is_become_unprivileged() and self._should_remove_tmp_path(tmpdir) else ""
        self._script_removed_tmpdir = bool(cleanup)
        cases = "\n".join(
            f"  {'|'.join(alias for alias, arch_ in ARCH_ALIASES.items() if arch_ == arch)}) "
            f"sha={sha}; arch={arch} ;;"
            for arch, sha in sorted(hashes.items())
        )
        return REMOTE_SCRIPT.format(
            module=shlex.quote(module_name),
            source=shlex.quote(source),
            args=shlex.quote(args_path),
            cleanup=shlex.quote(cleanup),
            cases=cases,
            mark=MARK,
            cache=CACHE_NAME,
            environment=self._compute_environment_string(),
        )

    def _cached_run(self, module_name, hashes, args_path, source, module_args, pipelining):
        script = self._script(module_name, hashes, args_path, source)
        in_data = module_args.encode() if pipelining else None
        res = self._low_level_execute_command(script, sudoable=True, in_data=in_data)
        status, output = parse_status(res.get("stdout", ""))
        if status.get("state") in ("hit", "installed") and self._script_removed_tmpdir:
            self._connection._shell.tmpdir = None
        return res, status, output

    def _upload(self, local: str, module_name: str) -> str:
        """Puts the binary into Ansible's remote tmp dir, readable by the become user."""
        tmpdir = self._connection._shell.tmpdir or self._make_tmp_path()
        remote = self._connection._shell.join_path(tmpdir, module_name)
        self._transfer_file(local, remote)
        self._fixup_perms2([tmpdir, remote], self._get_remote_user())
        return remote

    def _tmp_run(self, module_name, local, arch, module_args, cache) -> dict:
        """Ansible's own way: the binary and its args file in the remote tmp dir, run, removed."""
        tmpdir = self._connection._shell.tmpdir or self._make_tmp_path()
        remote = self._connection._shell.join_path(tmpdir, f"AnsiballZ_{module_name}")
        args_path = self._connection._shell.join_path(tmpdir, "args")
        self._transfer_file(local, remote)
        self._transfer_data(args_path, module_args)
        self._fixup_perms2([tmpdir, remote, args_path], self._get_remote_user())
        command = self._connection._shell.build_module_command(
            self._compute_environment_string(), "", remote, arg_path=args_path
        ).strip()
        res = self._low_level_execute_command(command, sudoable=True)
        cache = {**cache, "transferred": True, "path": remote}
        return self._result(res, res.get("stdout", ""), cache, module_name, arch)

    # --- results -----------------------------------------------------------------------------

    def _cannot_execute(self, res: dict, output: str) -> bool:
        return res.get("rc") == CANNOT_EXECUTE and "{" not in output

    def _result(self, res, output, cache, module_name, arch) -> dict:
        if self._cannot_execute(res, output):
            # ssh's own "Shared connection to ... closed." is no reason; with a tty (no
            # pipelining) the shell's complaint arrives on stdout.
            reason = [
                line for line in f"{output}\n{res.get('stderr') or ''}".strip().splitlines()
                if line.strip() and not line.startswith("Shared connection to ")
            ]
            return {
                "failed": True,
                "msg": f"{module_name} could not run on this host ({arch}): "
                f"{reason[-1] if reason else 'exit status 126'}",
                "binary_cache": cache,
                "rc": res.get("rc"),
            }
        data = self._parse_returned_data({**res, "stdout": output}, "legacy")
        data["binary_cache"] = cache
        return data

    def _no_binary(self, module_name: str, arch: str, have: str) -> dict:
        return {
            "failed": True,
            "msg": f"{module_name} has no binary for this host's architecture {arch!r} "
            f"(have: {have})",
        }

    def _display_warning(self, message: str) -> None:
        display.warning(message)


# action_plugins/<module>.py in the role are symlinks to this file; the collection's
# plugins/action/<module>.py import this name.
ActionModule = CachedBinaryAction
