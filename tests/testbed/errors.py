"""The test bed's exceptions: library code raises these, the tests and benchmarks decide what a
failure means (pytest fixtures turn them into a failed test, scripts into an exit status)."""

from __future__ import annotations


class TestbedError(RuntimeError):
    """A test machine, engine or host tool could not be set up; the message says why and how."""

    __test__ = False  # not a pytest test class, despite the name


class MachineError(TestbedError):
    """A systemd-nspawn machine could not be built, booted, reached or stopped."""


class DockerdError(TestbedError):
    """dockerd exited or did not answer; the message carries the end of its log."""


class HostToolError(TestbedError):
    """A host tool or Debian package the test bed needs is missing and could not be installed."""
