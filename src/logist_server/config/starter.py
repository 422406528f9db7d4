"""The commented starter `logist.yml` that `logist init` writes."""

STARTER = """\
# Logist configuration for this repository. Every key is optional; `logist config show`
# prints the effective values and where each one comes from. Precedence, later wins:
# built-in defaults < ~/.config/logist/config.yml < this file < LOGIST_* variables < flags.

# The agent that does the work (see `logist agent list`), its model and options.
agent: mock
# model: claude-sonnet-4-5
# agent_options:
#   scenario: edit

# Where agents run (see `logist runtime list`): host, docker, podman, kubernetes.
runtime: host
# Runtime options (env, mounts, network, image), retries.fallback_agent,
# retries.fallback_model, fallback_agent_options, pricing and the agent options base_url,
# api_key_env and args are yours only: set them in ~/.config/logist/config.yml or with
# flags; this file cannot (refused).
# What the agent may do without asking, per tool kind (allow, ask, deny): this file may
# only tighten what your own configuration allows.
# permissions:
#   execute: deny

# Budgets per job. A limit ends the job in `halted`; a hang (no output and no change
# in the workspace for that long) ends it in `stuck`.
limits:
  # max_cost_usd: 2.50
  # max_time_s: 1800
  # max_turns: 50
  hang_timeout_s: 600

# Jobs the language server runs at once.
concurrency: 4

# Transient failures (rate limit, network) are retried with exponential backoff;
# a fallback agent takes over when the first one keeps failing.
retries:
  max_retries: 2
  backoff_s: 2
  max_backoff_s: 60

# A supervisor can review each change and ask for another round before you see it.
review:
  supervisor: false
  max_rounds: 3
  # role: supervisor

# Roles beyond the built-in `worker` and `supervisor` (also: .logist/roles/NAME.yml).
# roles:
#   test-writer:
#     description: writes tests for the selected code
#     instructions: |
#       Write focused unit tests for the code below; do not change the code itself.
#       $task

# Extra patterns over raw agent output (doc/observer.md), and built-ins to turn off.
# observer:
#   patterns:
#     - name: vpn-down
#       regex: "corporate proxy unreachable"
#       kind: network_error
#       status: failed
#       reason: the VPN is down
#       transient: true
#   disable: []
"""
