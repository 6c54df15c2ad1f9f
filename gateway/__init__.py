"""Warden gateway: an MCP proxy that decides allow / deny / approve per identity and audits every call."""
