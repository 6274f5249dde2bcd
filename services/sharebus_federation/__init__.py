"""Federation of a district bus with the city bus over Apache Kafka's MirrorMaker 2 (docs/federation.md)."""
