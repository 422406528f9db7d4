"""Runtime providers: where agents run."""
