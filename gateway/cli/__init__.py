"""`warden` sub-commands that belong to the gateway: gateway, identity, policy."""
