"""The job engine: the facade, the driver's phase loop, accept, hunks and garbage collection."""
