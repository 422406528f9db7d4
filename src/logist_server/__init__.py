"""Logist: hand work to AI coding agents from the editor, in isolated workspaces."""

__version__ = "0.1.0"
