"""The HTTP gateway: publish, real-time feeds, batches, catalogue and grants for systems that do not speak Kafka."""
