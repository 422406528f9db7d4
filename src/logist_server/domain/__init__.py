"""The domain layer: jobs, states, plans, roles, prompts, events, errors; imports no other layer."""
