"""The store: jobs, usage, settings and notices, on SQLite or PostgreSQL."""
