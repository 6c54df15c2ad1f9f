"""Warden agent: an LLM loop that calls tools only through the gateway."""
