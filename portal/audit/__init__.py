"""The audit log pages and the chain check command (the chain itself lives in core.audit)."""
