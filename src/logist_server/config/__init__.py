"""Configuration: `logist.yml`, the user's config file, environment and flags, layered."""
