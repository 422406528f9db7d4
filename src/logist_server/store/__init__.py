"""The durable job store: SQLite records and events, its guards and its listing queries."""
