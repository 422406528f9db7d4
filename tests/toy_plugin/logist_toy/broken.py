"""An agent and a runtime whose module cannot be imported (a dependency that is not installed)."""

import logist_toy_missing_dependency  # noqa: F401  # the import error under test


class ToyAgent:
    name = "toy-broken"


class ToyRuntime:
    name = "toy-broken"
