"""The JSON API under /api/v1: the same agents, rights and rules as CalDAV."""
