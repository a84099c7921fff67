"""The background worker: periodic jobs and email delivery, run by `flask worker run`."""
