"""The container checks against a real, private dockerd."""
