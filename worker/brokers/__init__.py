"""Local Kafka-compatible brokers (Apache Kafka in KRaft mode, Tansu) launched as subprocesses for tests and dev."""
