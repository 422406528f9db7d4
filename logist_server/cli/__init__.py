"""The `logist` command line."""
