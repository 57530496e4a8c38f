"""Tidings transports."""
