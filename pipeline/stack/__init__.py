"""The local development stack: PostgreSQL, Kafka (KRaft) and Kafka Connect with Debezium, without Docker."""
