"""The pages of notifications: a user's own history, and for CS admins the outbox, its
failures (retried by hand) and the webhook endpoints. The machinery is in ``core.outbox``,
``core.notify`` and ``core.webhooks``; the worker in ``portal.worker``."""
