"""Agent and runtime providers, and the registry that finds them by entry point."""
