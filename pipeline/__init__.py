"""cdcsync: keeps a calendar read model in sync with independent service databases through Debezium."""
