"""The observer: a table of regular expressions over an agent's raw output.

Agents print failures in their own words: claude-code's `API Error: 429 {...}`, codex's
`exceeded retry limit, last status: 429 Too Many Requests`, gemini-cli's
`RESOURCE_EXHAUSTED`, aider's `litellm.AuthenticationError`, Node's `connect ECONNREFUSED`.
The observer recognises these shapes and names them: each `ObserverPattern` says which job
event to emit, which status the job should take (if any), a reason a person understands,
and whether the failure is transient (worth retrying after a pause).

It scans the raw lines that an agent's parser did not turn into structured messages, and
the text of agent error events; never the model's own prose, so a model that writes "I added
a rate limit to the API" raises no alarm. The patterns are anchored on error shapes for the
same reason. See doc/observer.md for the table and for adding patterns in `logist.yml`.

`scan` is on the hot path (every raw line). The patterns are combined into one regular
expression of named alternatives, and in front of it sits a literal prefilter: from each
pattern the observer derives strings one of which any match must contain (`econnreset`,
`api error`, `prompt is too long`...), so a line that contains none of them is
dismissed with a `lower()` and one case-sensitive literal search (shaped as a trie), without
running the patterns at all.

Patterns from `logist.yml` come from a repository, which may be hostile: a pattern like
`^(a|aa)+x$` backtracks for minutes on a line of `a`s an agent prints. So each of them runs
on its own through the `regex` package with a time limit (`SEARCH_TIMEOUT_S` per search,
`BUDGET_S` in all per job); one that runs out is disabled for the rest of the job and
reported once as an `observer_warning` event (`take_warnings`). The built-in table is ours
and runs unguarded, combined into one search.
"""

from __future__ import annotations

import functools
import importlib
import re
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any, Literal

import msgspec
import regex as guarded_re

from logist_server.domain.event_kinds import RESERVED, EventKind

Status = Literal["needs_input", "failed"]
_Match = re.Match[str] | guarded_re.Match[str]
STATUSES: tuple[str, ...] = ("needs_input", "failed")
#: What a user's (a repository's) pattern may make of a job: never `needs_input`, which
#: shows the user a question and waits for an answer (a fake one from a hostile repository).
USER_STATUSES: tuple[str, ...] = ("failed",)
FLAGS = re.IGNORECASE | re.MULTILINE
EXCERPT_CHARS = 200
SEARCH_TIMEOUT_S = 0.1  # one search of one user pattern
BUDGET_S = 1.0  # all searches of one user pattern in one job
WARNING_KIND = EventKind.OBSERVER_WARNING
_GUARDED_FLAGS = guarded_re.IGNORECASE | guarded_re.MULTILINE
_KIND = re.compile(r"[a-z][a-z0-9_]*\Z")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*\Z")
# Characters that `re.IGNORECASE` matches to an ASCII letter while `str.lower` does not map
# them to it: dotted capital I, dotless i, long s.
_FOLD = {0x130: "i", 0x131: "i", 0x17F: "s"}
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")
#: Job-event kinds a pattern may not pose as (the engine's and the agent's typed events).
RESERVED_KINDS = RESERVED


class ObserverPattern(msgspec.Struct, frozen=True, kw_only=True):
    """One row of the table: a regex over raw output and what a match means.

    `regex` is compiled case-insensitively and in multi-line mode (`^`/`$` match at line
    boundaries). `status` is what the job should become: `failed` (it cannot succeed: stop
    the agent and fail with `reason`), `needs_input` (the agent waits for the user), or None
    (record the event; if the agent later exits non-zero, `reason` explains why). A
    `transient` failure is worth retrying after a pause (rate limits, network).
    """

    name: str
    regex: str
    kind: str
    status: Status | None = None
    reason: str
    transient: bool = False


class ObserverHit(msgspec.Struct, frozen=True):
    """A pattern that matched, and the line it matched in (at most 200 characters)."""

    pattern: ObserverPattern
    excerpt: str

    @property
    def kind(self) -> str:
        return self.pattern.kind

    @property
    def status(self) -> Status | None:
        return self.pattern.status

    @property
    def reason(self) -> str:
        return self.pattern.reason

    @property
    def transient(self) -> bool:
        return self.pattern.transient

    def event_data(self) -> dict[str, Any]:
        """The data of the job event for this hit (its kind is `self.kind`)."""
        return {
            "pattern": self.pattern.name,
            "reason": self.pattern.reason,
            "excerpt": self.excerpt,
            "transient": self.pattern.transient,
        }


# -- the built-in table ----------------------------------------------------------------------
_RATE_REASON = "the model provider is rate limiting requests (HTTP 429)"
_QUOTA_REASON = (
    "the account's quota or usage limit with the model provider is used up: "
    "check the plan or billing, or wait for the limit to reset"
)
_AUTH_REASON = (
    "authentication failed: check the agent's API key or login "
    "(e.g. ANTHROPIC_API_KEY, OPENAI_API_KEY, GEMINI_API_KEY)"
)
_OVERFLOW_REASON = (
    "the conversation no longer fits the model's context window: narrow the prompt or the target"
)
_NETWORK_REASON = "network failure talking to the model provider"
_QUESTION_REASON = "the agent is waiting for an answer on its terminal"
_ERRNO = (
    r"(?:ECONNREFUSED|ECONNRESET|ECONNABORTED|ETIMEDOUT|ENOTFOUND|EAI_AGAIN"
    r"|EHOSTUNREACH|ENETUNREACH)"
)


def _json(key: str, value: str) -> str:
    """`"key": "value` in a JSON error object, also when its quotes are escaped (`\\"`)."""
    return rf'\\?"{key}\\?"\s*:\s*\\?"{value}'


def _p(
    name: str,
    kind: str,
    status: Status | None,
    reason: str,
    transient: bool,
    *alternatives: str,
) -> ObserverPattern:
    return ObserverPattern(
        name=name,
        regex="|".join(alternatives),
        kind=kind,
        status=status,
        reason=reason,
        transient=transient,
    )


#: The built-in table, in the order it is tried. Specific shapes come before general ones:
#: a used-up quota is also an HTTP 429, and codex's `stream error: ... 401 Unauthorized` is an
#: authentication failure before it is a stream error.
BUILTIN_PATTERNS: tuple[ObserverPattern, ...] = (
    _p(
        "context_overflow", "context_overflow", "failed", _OVERFLOW_REASON, False,
        # claude-code / Anthropic: `prompt is too long: 213462 tokens > 200000 maximum`,
        # or claude-code's bare `Prompt is too long` result.
        r"\bprompt is too long:\s*\d+\s*tokens",
        r"^\W*(?:API Error\W+)?prompt is too long\W*$",
        _json("message", "prompt is too long"),
        # OpenAI / codex: `context_length_exceeded`, `Your input exceeds the context window
        # of this model`, `Codex ran out of room in the model's context window`.
        r"\bcontext_length_exceeded\b",
        r"\bexceeds the context window of this model\b",
        r"\bran out of room in the model's context window\b",
        r"\bmaximum context length is \d+ tokens\b",
        # aider / litellm.
        r"\bContextWindowExceededError\b",
        # Gemini API.
        r"\binput token count(?: \(\d+\))? exceeds the maximum number of tokens allowed\b",
    ),
    _p(
        "auth", "auth_failed", "failed", _AUTH_REASON, False,
        # claude-code: `Invalid API key · Please run /login`, `Missing API key · Run /login`,
        # and the Anthropic error object; claude-agent-acp: `Invalid API key · Fix external
        # API key`.
        r"\b(?:invalid|missing) API key\W{1,8}(?:(?:please )?run /login|fix external API key)\b",
        _json("type", "authentication_error"),
        r"\binvalid x-api-key\b",
        r"\bCould not resolve authentication method\b",
        r"\bOAuth token has expired\b",
        # codex: `unexpected status 401 Unauthorized`, `last status: 401 Unauthorized`.
        r"\b(?:unexpected status|last status:?)\s*401\b",
        r"\b(?:API Error|Error code):?\s*\(?401\b",
        # aider / litellm / OpenAI / Anthropic SDKs.
        r"\b(?:litellm|openai|anthropic)\.(?:exceptions\.)?AuthenticationError\b",
        r"\bThe API provider is not able to authenticate you\b",
        r"\bIncorrect API key provided\b",
        # gemini-cli / Google: `API key not valid. Please pass a valid API key.`
        r"\bAPI key not valid\b",
        r"\bAPI_KEY_INVALID\b",
    ),
    _p(
        "quota", "rate_limited", "failed", _QUOTA_REASON, False,
        # OpenAI's 429 for a used-up balance (`insufficient_quota`); claude.ai plan limits;
        # Anthropic credit; Gemini's daily quota.
        r"\binsufficient_quota\b",
        r"\bClaude AI usage limit reached\b",
        r"\bYou['\u2019]ve hit your (?:usage )?limit\b",
        r"\bCredit balance is too low\b",
        r"\bYou have exhausted your daily quota\b",
        # A budget or billing refusal: HTTP 402 (`Payment Required`), Anthropic's
        # `billing_error`, and a 400/402 that says RESOURCE_EXHAUSTED (gemini-cli prints the
        # status of any refusal: only with 429 is it a rate limit). Before `rate_limit`, and
        # anchored on the code, which comes first in the line: retrying would not help.
        r"\bPayment Required\b",
        r"\b(?:Error code|API Error|status(?: code)?|HTTP)\W{0,3}402\b",
        r"\bbilling_error\b",
        r"\b(?:Error code|API Error)\W{0,3}40[02]\b[^\n]{0,400}?\bRESOURCE_EXHAUSTED\b",
        r'\\?"code\\?"\s*:\s*40[02]\b[^\n]{0,400}?\bRESOURCE_EXHAUSTED\b',
    ),
    _p(
        "rate_limit", "rate_limited", None, _RATE_REASON, True,
        # claude-code: `API Error: 429 {"type":"error","error":{"type":"rate_limit_error",...`
        # and, while retrying, `API Error (429 {...}) · Retrying in 2 seconds…`.
        r"\bAPI Error:?\s*\(?429\b",
        # claude-agent-acp (ACP prompt error): `API Error: Request rejected (429) · ...`.
        r"\bAPI Error:?\s*Request rejected\s*\(429\)",
        _json("type", "rate_limit_error"),
        # codex: `exceeded retry limit, last status: 429 Too Many Requests`.
        r"\b(?:unexpected status|last status:?)\s*429\b",
        r"\bError code:?\s*429\b",
        r'\\?"code\\?"\s*:\s*429\b',
        # gemini-cli / Google: `"status": "RESOURCE_EXHAUSTED"`, `Quota exceeded for quota
        # metric ...`.
        r"\bRESOURCE_EXHAUSTED\b",
        r"\bQuota exceeded for (?:quota )?metric\b",
        # aider / litellm / OpenAI SDK.
        r"\b(?:litellm|openai|anthropic)\.(?:exceptions\.)?RateLimitError\b",
        r"\bThe API provider has rate limited you\b",
        r"\bRate limit reached for \S+ in organization\b",
    ),
    _p(
        "overloaded", "rate_limited", None,
        "the model provider is overloaded (HTTP 529 or 503): try again later", True,
        _json("type", "overloaded_error"),
        r"\bAPI Error:?\s*\(?529\b",
        r"\bThe API provider's servers are down or overloaded\b",
    ),
    _p(
        "network_agent", "network_error", None, _NETWORK_REASON, True,
        # claude-code: `API Error (Connection error.)`, `API Error: Request timed out.`,
        # `Unable to connect to API (ECONNRESET)`.
        r"\bAPI Error\W{1,3}(?:Connection error|Request timed out|Unable to connect)\b",
        r"\bUnable to connect to API\b",
        # codex: `stream error: ...`, `stream disconnected before completion: error sending
        # request for url (...)`.
        r"\bstream error:",
        r"\bstream disconnected before completion\b",
        r"\berror sending request for url\b",
        # aider / litellm / OpenAI SDK: `litellm.APIConnectionError`, `litellm.APIError:
        # APIError: OpenAIException - Connection error.`
        r"\b(?:litellm|openai|anthropic)\.(?:exceptions\.)?APIConnectionError\b",
        r"\bAPIConnectionError: Connection error\b",
        r"Exception - Connection error\b",
    ),
    _p(
        "network", "network_error", None, _NETWORK_REASON, True,
        # Node and the OS: `connect ECONNREFUSED 127.0.0.1:443`, `read ECONNRESET`,
        # `getaddrinfo ENOTFOUND api.anthropic.com`, `(ECONNRESET)`, `code: 'ETIMEDOUT'`,
        # `TypeError: fetch failed`, `Error: socket hang up`, `[Errno 111] Connection refused`.
        rf"\b(?:connect|read|write|getaddrinfo|reason:)\s+{_ERRNO}\b",
        rf"[(\[]{_ERRNO}[)\]]",
        rf"\b(?:code|errno)\W{{1,4}}{_ERRNO}\b",
        rf"\bError:\s*{_ERRNO}\b",
        r"\bgetaddrinfo failed\b",
        r"(?:\bTypeError:?\s*|\()fetch failed\b",
        r"\bsocket hang up\b",
        r"(?:\[Errno -?\d+\]|\bError:|:)\s*(?:Connection refused|Connection reset by peer"
        r"|Network is unreachable|No route to host|Temporary failure in name resolution"
        r"|Name or service not known)\b",
    ),
    _p(
        "question_yes_no", "question", "needs_input", _QUESTION_REASON, False,
        # aider: `Create new file? (Y)es/(N)o [Yes]:`, `(Y)es/(N)o/(D)on't ask again`;
        # elsewhere `Continue? [y/N]`, `Proceed (yes/no)?`.
        r"\(Y\)es/\(N\)o\b",
        r"[\[(]y/n[\])]",
        r"[\[(]yes/no[\])]",
    ),
    _p(
        "question_press_enter", "question", "needs_input", _QUESTION_REASON, False,
        r"\bPress (?:Enter|Return)(?: key)? to\b",
    ),
)  # fmt: skip


# -- user patterns ---------------------------------------------------------------------------
_FIELDS = ("name", "regex", "kind", "status", "reason", "transient")


def _compile(name: str, regex: str) -> re.Pattern[str]:
    try:
        compiled = re.compile(regex, FLAGS)
    except re.error as exc:
        raise ValueError(f"observer pattern '{name}': bad regex {regex!r}: {exc}") from None
    _refuse_empty_match(name, regex, compiled.search("") is not None)
    return compiled


def _compile_guarded(name: str, regex: str) -> guarded_re.Pattern[str]:
    """A user pattern, compiled for time-limited searches (and checked by `re` as well)."""
    _compile(name, regex)
    try:
        return guarded_re.compile(regex, _GUARDED_FLAGS)
    except guarded_re.error as exc:
        raise ValueError(f"observer pattern '{name}': bad regex {regex!r}: {exc}") from None


def _refuse_empty_match(name: str, regex: str, matches: bool) -> None:
    if matches:
        raise ValueError(
            f"observer pattern '{name}': regex {regex!r} matches empty text, "
            "so it would match every line"
        )


def pattern_from_dict(d: Mapping[str, Any]) -> ObserverPattern:
    """An `ObserverPattern` from one entry of `observer.patterns` in logist.yml.

    `name`, `regex` and `kind` are required (not a `RESERVED` kind); `status` (failed or
    absent: `needs_input` is the built-in question patterns' own),
    `reason` (defaults to "matched observer pattern NAME") and `transient` (default false)
    are optional. Raises ValueError naming the pattern for anything it cannot use.
    """
    if not isinstance(d, Mapping):
        raise ValueError(f"an observer pattern must be a mapping, got {type(d).__name__}")
    name = d.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(
            f"observer pattern name must be a word (letters, digits, _ . -), got {name!r}"
        )
    unknown = sorted(str(k) for k in d if k not in _FIELDS)
    if unknown:
        raise ValueError(
            f"observer pattern '{name}': unknown field(s) {', '.join(unknown)} "
            f"(known: {', '.join(_FIELDS)})"
        )
    regex = d.get("regex")
    if not isinstance(regex, str) or not regex:
        raise ValueError(f"observer pattern '{name}': regex must be a non-empty string")
    _compile_guarded(name, regex)
    kind = d.get("kind")
    if not isinstance(kind, str) or not _KIND.match(kind):
        raise ValueError(
            f"observer pattern '{name}': kind must be lower_case_with_underscores, got {kind!r}"
        )
    if kind in RESERVED_KINDS:
        raise ValueError(
            f"observer pattern '{name}': kind '{kind}' is reserved (an event Logist writes "
            "itself): use a kind of your own"
        )
    status = d.get("status")
    if status == "needs_input":
        raise ValueError(
            f"observer pattern '{name}': status needs_input is reserved for the agent's own "
            "questions and the built-in question patterns: use failed, or leave it out"
        )
    if status is not None and status not in USER_STATUSES:
        raise ValueError(
            f"observer pattern '{name}': unknown status {status!r} (known: failed, or leave it out)"
        )
    reason = d.get("reason", f"matched observer pattern {name}")
    if not isinstance(reason, str) or not reason.strip():
        raise ValueError(f"observer pattern '{name}': reason must be a non-empty string")
    transient = d.get("transient", False)
    if not isinstance(transient, bool):
        raise ValueError(f"observer pattern '{name}': transient must be true or false")
    return ObserverPattern(
        name=name,
        regex=regex,
        kind=kind,
        status=status,
        reason=reason.strip(),
        transient=transient,
    )


# -- the scanner -----------------------------------------------------------------------------
class Observer:
    """Scans raw agent output against a table of patterns; the first match in table order wins.

    `patterns` is the table (the built-ins by default); `disabled` names patterns to leave
    out. `with_extra` puts more patterns (a user's) in front, so they win over the table.
    """

    __slots__ = (
        "_combined",
        "_compiled",
        "_guarded",
        "_literals",
        "_others",
        "_spent",
        "_unfiltered",
        "_warnings",
        "patterns",
    )

    def __init__(
        self,
        patterns: Sequence[ObserverPattern] = BUILTIN_PATTERNS,
        disabled: Collection[str] = (),
    ) -> None:
        names = [p.name for p in patterns]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"observer pattern name(s) used twice: {', '.join(duplicates)}")
        unknown = sorted(set(disabled) - set(names))
        if unknown:
            raise ValueError(
                f"cannot disable unknown observer pattern(s) {', '.join(unknown)} "
                f"(known: {', '.join(names)})"
            )
        self.patterns: tuple[ObserverPattern, ...] = tuple(
            p for p in patterns if p.name not in disabled
        )
        # Patterns that are not the built-ins' own (a repository's) are searched one by one
        # with a time limit; `_spent` is the time each has taken, `_warnings` the reports of
        # those that ran out (disabled: their `_spent` is infinite).
        self._guarded = {i for i, p in enumerate(self.patterns) if p not in BUILTIN_PATTERNS}
        self._compiled: list[re.Pattern[str] | guarded_re.Pattern[str]] = [
            _compile_guarded(p.name, p.regex) if i in self._guarded else _compile(p.name, p.regex)
            for i, p in enumerate(self.patterns)
        ]
        self._spent = dict.fromkeys(self._guarded, 0.0)
        self._warnings: list[ObserverHit] = []
        # One search for the common case (no match): every pattern that can be wrapped in a
        # named group without changing its meaning (no groups of its own, no global flags)
        # becomes an alternative `(?P<_N>...)`; the rest are searched one by one.
        alternatives: list[str] = []
        others: list[int] = []
        for index, (pattern, compiled) in enumerate(
            zip(self.patterns, self._compiled, strict=True)
        ):
            wrapped = f"(?P<_{index}>{pattern.regex})"
            if index not in self._guarded and compiled.groups == 0 and _compiles(wrapped):
                alternatives.append(wrapped)
            else:
                others.append(index)
        self._combined = re.compile("|".join(alternatives), FLAGS) if alternatives else None
        self._others = others
        # The prefilter: one literal search over the lowered text for the patterns that have
        # strings one of which a match must contain; the others (`_unfiltered`, rare) are
        # searched on every line.
        needs = [required_literals(p.regex) for p in self.patterns]
        literals = {literal for need in needs if need is not None for literal in need}
        self._literals = _literal_search(frozenset(literals)) if literals else None
        self._unfiltered = [i for i, need in enumerate(needs) if need is None]

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None) -> Observer:
        """The observer for the `observer:` section of logist.yml (None: the built-ins).

        `patterns` (a list of mappings, see `pattern_from_dict`) go before the built-ins;
        one with a built-in's name replaces it. `disable` lists pattern names to drop.
        Raises ValueError for anything it cannot use.
        """
        if config is None:
            return cls()
        if not isinstance(config, Mapping):
            raise ValueError("observer: must be a mapping with 'patterns' and/or 'disable'")
        unknown = sorted(str(k) for k in config if k not in ("patterns", "disable"))
        if unknown:
            raise ValueError(
                f"observer: unknown key(s) {', '.join(unknown)} (known: patterns, disable)"
            )
        raw_patterns = config.get("patterns") or []
        raw_disable = config.get("disable") or []
        if not isinstance(raw_patterns, list):
            raise ValueError("observer.patterns must be a list")
        if not isinstance(raw_disable, list) or not all(isinstance(n, str) for n in raw_disable):
            raise ValueError("observer.disable must be a list of pattern names")
        extra = [pattern_from_dict(item) for item in raw_patterns]
        return cls(BUILTIN_PATTERNS, disabled=()).with_extra(extra, disabled=raw_disable)

    def with_extra(
        self, patterns: Iterable[ObserverPattern], disabled: Collection[str] = ()
    ) -> Observer:
        """A new observer with `patterns` first (they win); one with a name already in the
        table replaces that row. `disabled` names are then left out."""
        extra = list(patterns)
        replaced = {p.name for p in extra}
        table = extra + [p for p in self.patterns if p.name not in replaced]
        return Observer(table, disabled=disabled)

    def for_job(self) -> Observer:
        """A copy with its own time budgets and warnings, for one job's driver."""
        copy = Observer.__new__(Observer)
        for name in Observer.__slots__:
            setattr(copy, name, getattr(self, name))
        copy._spent = dict.fromkeys(self._guarded, 0.0)
        copy._warnings = []
        return copy

    def take_warnings(self) -> list[ObserverHit]:
        """The `observer_warning` hits since the last call: user patterns that ran out of
        time and are disabled for the rest of the job (each reported once)."""
        warnings, self._warnings = self._warnings, []
        return warnings

    def _search(self, index: int, text: str) -> _Match | None:
        """Pattern `index` searched in `text`; a user pattern within its time limits."""
        compiled = self._compiled[index]
        if index not in self._guarded:
            return compiled.search(text)
        remaining = BUDGET_S - self._spent[index]
        if remaining <= 0:
            return None
        assert isinstance(compiled, guarded_re.Pattern)
        started = time.perf_counter()
        try:
            return compiled.search(text, timeout=min(SEARCH_TIMEOUT_S, remaining))
        except TimeoutError:
            self._disable(index, text)
            return None
        finally:
            if self._spent[index] != float("inf"):
                self._spent[index] += time.perf_counter() - started
                if self._spent[index] >= BUDGET_S:
                    self._disable(index, text)

    def _disable(self, index: int, text: str) -> None:
        self._spent[index] = float("inf")
        pattern = self.patterns[index]
        warning = ObserverPattern(
            name=pattern.name,
            regex=pattern.regex,
            kind=WARNING_KIND,
            reason=(
                f"observer pattern '{pattern.name}' took too long on the agent's output "
                f"(over {SEARCH_TIMEOUT_S} s on one line or {BUDGET_S} s in all): "
                "disabled for the rest of this job; make it simpler (no nested repetition)"
            ),
        )
        line = text.split("\n", 1)[0]
        excerpt = line if len(line) <= EXCERPT_CHARS else line[: EXCERPT_CHARS - 1] + "…"
        self._warnings.append(ObserverHit(warning, excerpt.strip()))

    def scan(self, text: str) -> ObserverHit | None:
        """The first pattern, in table order, that matches `text` (a line or a block)."""
        if "\x1b" in text:
            text = _ANSI.sub("", text)
        if self._literals is not None:
            # A case-insensitive match implies that one of its (ASCII) required literals
            # occurs in the lowered text; `_FOLD` covers the few non-ASCII characters that
            # `re` folds onto ASCII letters but `str.lower` does not.
            lowered = text.lower() if text.isascii() else text.translate(_FOLD).lower()
            if self._literals.search(lowered) is None:
                for index in self._unfiltered:
                    found = self._search(index, text)
                    if found is not None:
                        return ObserverHit(self.patterns[index], _excerpt(text, found))
                return None
        first: int | None = None
        match: _Match | None = None
        if self._combined is not None:
            found = self._combined.search(text)
            if found is not None:
                assert found.lastgroup is not None
                first, match = int(found.lastgroup[1:]), found
        for index in self._others:
            if first is not None and index > first:
                break
            found = self._search(index, text)
            if found is not None:
                first, match = index, found
                break
        if first is None or match is None:
            return None
        # The combined search reports the pattern that matched leftmost; one earlier in the
        # table may match further on, and the table order decides.
        for index in range(first):
            found = self._search(index, text)
            if found is not None:
                first, match = index, found
                break
        return ObserverHit(pattern=self.patterns[first], excerpt=_excerpt(text, match))


@functools.lru_cache(maxsize=512)
def required_literals(regex: str) -> frozenset[str] | None:
    """Lower-case ASCII strings at least one of which every match of `regex` contains.

    None when no such set with strings of 3 or more characters can be found. Derived from
    Python's own parse of the pattern (`re._parser`); should that private module change,
    the answer is None and the observer simply runs without its prefilter.
    """
    try:
        parser: Any = importlib.import_module("re._parser")
        return _need(parser.parse(regex, FLAGS).data)
    except Exception:
        return None


def _need(items: Any) -> frozenset[str] | None:
    """The most selective requirement of a parsed sequence (see `required_literals`)."""
    best: frozenset[str] | None = None
    run: list[str] = []

    def consider(candidate: frozenset[str] | None) -> None:
        nonlocal best
        if not candidate or min(map(len, candidate)) < 3:
            return
        if best is None or (min(map(len, candidate)), -len(candidate)) > (
            min(map(len, best)),
            -len(best),
        ):
            best = candidate

    def flush() -> None:
        if run:
            consider(frozenset({"".join(run)}))
            run.clear()

    for op, av in items:
        name = str(op)
        if name == "LITERAL":
            char = chr(av).lower()
            if char.isascii():
                run.append(char)
                continue
        flush()
        if name == "SUBPATTERN":
            consider(_need(av[-1].data))
        elif name == "ATOMIC_GROUP":
            consider(_need(av.data))
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT") and av[0] >= 1:
            consider(_need(av[2].data))
        elif name == "BRANCH":
            parts = [_need(branch.data) for branch in av[1]]
            if all(part is not None for part in parts):
                consider(frozenset().union(*(part for part in parts if part is not None)))
        # Anything else (classes, anchors, lookarounds, optional parts) requires nothing.
    flush()
    return best


@functools.lru_cache(maxsize=32)
def _literal_search(literals: frozenset[str]) -> re.Pattern[str]:
    """A case-sensitive regex matching any of `literals`, shaped as a trie.

    A flat alternation tries every literal at every position; a trie tries one branch per
    first character, which makes the prefilter several times faster.
    """
    words = set(literals)
    # A literal containing another one adds nothing: the shorter one already triggers.
    words = {w for w in words if not any(o != w and o in w for o in words)}
    trie: dict[str, Any] = {}
    for word in words:
        node = trie
        for char in word:
            node = node.setdefault(char, {})

    def build(node: dict[str, Any]) -> str:
        alternatives = [re.escape(c) + build(child) for c, child in sorted(node.items())]
        if len(alternatives) <= 1:
            return "".join(alternatives)
        return "(?:" + "|".join(alternatives) + ")"

    return re.compile(build(trie))


def _compiles(regex: str) -> bool:
    try:
        re.compile(regex, FLAGS)
    except re.error:
        return False
    return True


def _excerpt(text: str, match: _Match) -> str:
    """The line around `match`, trimmed to EXCERPT_CHARS characters around the match."""
    start = text.rfind("\n", 0, match.start()) + 1
    end = text.find("\n", match.end())
    if end < 0:
        end = len(text)
    line = text[start:end]
    if len(line) <= EXCERPT_CHARS:
        return line.strip()
    # Keep the match visible: start a little before it, mark what was cut with "…".
    cut_from = max(start, min(match.start() - 40, end - EXCERPT_CHARS))
    window = text[cut_from:end]
    prefix = "…" if cut_from > start else ""
    if len(prefix) + len(window) > EXCERPT_CHARS:
        window = window[: EXCERPT_CHARS - len(prefix) - 1] + "…"
    return (prefix + window).strip()
