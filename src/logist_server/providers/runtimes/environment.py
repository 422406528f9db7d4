"""The environment an agent process gets: a minimal base plus what its provider declares.

Never the whole environment of the user (or of the server): `LOGIST_TOKEN`, credentials
and anything else the user has exported stay out unless the agent's provider names them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

#: Variables every agent gets from the user's environment, when set.
BASE = (
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "TERM", "LANG", "LANGUAGE", "TZ", "TMPDIR",
    "http_proxy", "https_proxy", "no_proxy", "all_proxy",
    "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY",
    # Which configuration files git reads (as HOME and XDG_CONFIG_HOME do): the agent's git
    # sees the user's configuration, and the repo guard watches those same files.
    "GIT_CONFIG_GLOBAL", "GIT_CONFIG_SYSTEM", "GIT_CONFIG_NOSYSTEM",
)  # fmt: skip
#: Prefixes of base variables: the locale (`LC_*`) and the XDG base directories.
BASE_PREFIXES = ("LC_", "XDG_")
#: Never passed on, even when a provider declares it: the TCP server's client secret.
NEVER = frozenset({"LOGIST_TOKEN"})


def agent_environment(
    user: Mapping[str, str], inherit: Iterable[str], extra: Mapping[str, str]
) -> dict[str, str]:
    """The base variables and the declared (`inherit`) ones found in `user`, then `extra`
    (what the provider sets itself) on top."""
    wanted = set(BASE) | set(inherit)
    env = {
        name: value
        for name, value in user.items()
        if (name in wanted or name.startswith(BASE_PREFIXES)) and name not in NEVER
    }
    env.update(extra)
    return env
