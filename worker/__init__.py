"""Streaming ledger for customer credit balances."""
