"""Small standard-library helpers any layer may use: atomic files, locks, pipes, redaction."""
