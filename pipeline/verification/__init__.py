"""``cdcsync verify``: the spec's rules evaluated on the sources, compared with the calendar."""
