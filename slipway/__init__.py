"""Slipway's command line and local stack (developer side; nothing here is deployed)."""
