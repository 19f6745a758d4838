"""Adapters translate between a chat platform and profilebot's neutral messages."""
