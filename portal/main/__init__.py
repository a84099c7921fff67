"""The home page and language switch."""
