"""What driving a job needs from the engine: a narrow protocol, so the driver never imports
the facade (`Engine` satisfies it structurally)."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from logist_server.domain.model import Job, RuntimeHandle
from logist_server.domain.observer import Observer
from logist_server.domain.roles import Role
from logist_server.providers.agents.base import AgentProvider
from logist_server.providers.registry import Registry
from logist_server.providers.runtimes.base import Runtime
from logist_server.store.job_store import JobStore
from logist_server.vcs.git import RepoInfo


class DriverServices(Protocol):
    """The repository's store, configuration and providers, as the driver uses them."""

    @property
    def store(self) -> JobStore: ...

    @property
    def repo_info(self) -> RepoInfo: ...

    @property
    def repo(self) -> Path: ...

    @property
    def workspace_root(self) -> Path: ...

    @property
    def observer(self) -> Observer: ...

    @property
    def agents(self) -> Registry[AgentProvider]: ...

    def runtime_for(self, job: Job) -> Runtime: ...

    def runtime_for_handle(self, job: Job, handle: RuntimeHandle) -> Runtime: ...

    def roles(self) -> dict[str, Role]: ...

    def role(self, job: Job, name: str) -> Role: ...

    def job_for_step(self, job: Job, role: Role, agent: str) -> Job: ...

    def reviewed_diff(self, job: Job) -> bytes: ...
