"""Agent providers: what program runs, and how its output is read."""
