"""The bench's peers beside cdcsync: the Debezium JDBC sink connector and Flink SQL."""
