"""The `warden` command: assembles the CLIs of the gateway, policies, finetune and agent."""
