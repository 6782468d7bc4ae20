"""pydantic shapes at the edges: inbound envelopes, outbound records, dead letters."""
