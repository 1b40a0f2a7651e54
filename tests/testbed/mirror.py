"""The Debian mirror for debootstrap: the one this machine's apt already uses.

Operators run behind mirrors and proxies, so no host name is written into the repository:
`DEBOOTSTRAP_MIRROR` wins, then the first `deb` URI of apt's configuration (deb822 `.sources`
files and one-line `sources.list` entries) that serves Debian's main archive, then Debian's
own redirector as the last resort.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

APT_DIR = Path("/etc/apt")
FALLBACK = "http://deb.debian.org/debian"


def _one_line_uris(text: str) -> list[str]:
    uris = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line.startswith("deb "):
            continue
        # deb [options] URI suite components...
        line = re.sub(r"^deb\s+(\[[^\]]*\]\s+)?", "", line)
        parts = line.split()
        if len(parts) >= 2 and not parts[1].endswith("-security"):
            uris.append(parts[0])
    return uris


def _deb822_uris(text: str) -> list[str]:
    uris = []
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line.startswith("#") or ":" not in line or line[:1].isspace():
                continue
            key, value = line.split(":", 1)
            fields[key.strip().lower()] = value.strip()
        if "deb" not in fields.get("types", "").split() or fields.get("enabled", "yes") == "no":
            continue
        suites = fields.get("suites", "").split()
        if suites and all(s.endswith("-security") for s in suites):
            continue
        uris.extend(fields.get("uris", "").split())
    return uris


def apt_uris(apt_dir: Path = APT_DIR) -> list[str]:
    """Every non-security `deb` URI of apt's configuration, in apt's reading order."""
    uris: list[str] = []
    sources_list = apt_dir / "sources.list"
    if sources_list.is_file():
        uris += _one_line_uris(sources_list.read_text(errors="replace"))
    parts = apt_dir / "sources.list.d"
    if parts.is_dir():
        for path in sorted(parts.iterdir()):
            text = path.read_text(errors="replace") if path.is_file() else ""
            if path.suffix == ".list":
                uris += _one_line_uris(text)
            elif path.suffix == ".sources":
                uris += _deb822_uris(text)
    return uris


def debian_mirror(apt_dir: Path = APT_DIR) -> str:
    """The mirror debootstrap should use (see the module doc for the order)."""
    override = os.environ.get("DEBOOTSTRAP_MIRROR", "").strip()
    if override:
        return override
    for uri in apt_uris(apt_dir):
        if uri.startswith(("http://", "https://", "file:")) and "security" not in uri:
            return uri.rstrip("/")
    return FALLBACK
