"""The drift monitor: streams a capture window, computes drift and quality, publishes metrics, reports, events."""
