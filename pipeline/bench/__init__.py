"""``cdcsync bench``: freshness, backlog and initial-load measurements of cdcsync beside its peers."""
