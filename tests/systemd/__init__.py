"""The systemd checks against real systemd machines (systemd-nspawn).

A package, so that its conftest is imported as `systemd.conftest` and leaves the top-level
`conftest` module (which other tests import from) alone."""
