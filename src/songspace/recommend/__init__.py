"""Recommenders: pure functions over the query layer (vectors in, track ids out)."""
