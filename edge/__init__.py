"""The Genius edge agent: local MQTT in, normalise, privacy, SQLite outbox, store-and-forward to the hub."""
