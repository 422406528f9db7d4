"""The ACP bridge's reading of an agent's JSON-RPC error (`acp_bridge.readable`), on the
shapes the real agents sent in tests/real_agents/test_acp_matrix.py (codex-acp 0.16.0,
gemini-cli 0.61.0 --acp, claude-agent-acp 0.23.1, against the scripted endpoint)."""

from __future__ import annotations

from typing import Any

import pytest
from acp import RequestError

from logist_server.providers.agents.acp_bridge import readable

BUDGET = "Logist budget of 100 tokens exhausted (2300 used)"
CODEX_400 = (
    '{"error": {"message": "' + BUDGET + '", "type": "invalid_request_error", "code": null, '
    '"param": null}}'
)
GEMINI_400 = '{"error":{"code":400,"message":"' + BUDGET + '","status":"INVALID_ARGUMENT"}}'


@pytest.mark.parametrize(
    ("code", "message", "data", "expected"),
    [
        # codex-acp: the API's body as text in data.message
        (-32603, "Internal error", {"message": CODEX_400, "codex_error_info": "other"},
         f"the model API refused the request: {BUDGET} (invalid_request_error)"),
        (-32603, "Internal error",
         {"message": "unexpected status 401 Unauthorized: Incorrect API key provided",
          "codex_error_info": "other"},
         "unexpected status 401 Unauthorized: Incorrect API key provided"),
        # gemini --acp: the API's body as the message, the HTTP status as the code
        (400, GEMINI_400, None,
         f"the model API refused the request: {BUDGET} (INVALID_ARGUMENT, HTTP 400)"),
        (-32603, "Internal error", {"details": "No previous sessions found for this project."},
         "No previous sessions found for this project."),
        # claude-agent-acp: its text after JSON-RPC's generic one
        (-32603, "Internal error: API Error: Request rejected (429) · Rate limit reached", None,
         "API Error: Request rejected (429) · Rate limit reached"),
        (-32002, "Resource not found", None, "Resource not found"),
        # nothing better to say: kept as it came
        (-32603, "Internal error", None, "Internal error"),
        (-32603, "Internal error", [1, 2], "Internal error: [1, 2]"),
        (-32603, "Internal error", {"message": '{"error": "not an object"}'},
         '{"error": "not an object"}'),
    ],
)  # fmt: skip
def test_an_agents_error_reads_as_a_reason(
    code: int, message: str, data: Any, expected: str
) -> None:
    assert readable(RequestError(code, message, data)) == expected
