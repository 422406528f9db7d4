"""Errors a user can act on. Each carries one clear line and an exit status."""

from __future__ import annotations


class LogistError(Exception):
    """Base class for errors shown to the user as one line (no traceback)."""

    exit_status = 1


class UsageError(LogistError):
    """Bad input from the user: a missing prompt, an unknown agent, a file outside the repo..."""

    exit_status = 2


class NotInRepositoryError(UsageError):
    """The path is not inside a git repository."""


class JobNotFoundError(UsageError):
    """No job matches the given id."""


class IllegalTransitionError(UsageError):
    """A status change the state machine does not allow."""


class StoreError(UsageError):
    """The job store cannot be opened, read or written; the message names the file and the fix."""


class StoreFullError(StoreError):
    """The job store's file system is full."""


class JobBusyError(LogistError):
    """Another process is driving the job."""


class ConflictError(LogistError):
    """Accepting a job would overwrite changes the user made since the job's base."""

    def __init__(
        self, message: str, files: list[str], reasons: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.files = files
        self.reasons = reasons or {}  # path -> why, in a few words (when known)


class GitError(LogistError):
    """A git command failed."""


class RuntimeProviderError(LogistError):
    """A runtime could not provision, start or control an agent."""


class ConfigError(UsageError):
    """A configuration file (or variable) is malformed; the message names file and key."""
