"""Simulated customers, homes and venues; dataset import; fleet load and fault injection."""
