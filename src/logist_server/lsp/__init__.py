"""The Logist language server: LSP plus `logist/*` methods over one job engine."""
