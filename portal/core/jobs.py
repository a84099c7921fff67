"""Background jobs: one way to say "do this later", whatever runs it.

``enqueue(func, *args, **kwargs)`` takes a module-level function (importable by name: a worker
on another machine imports it) and plain arguments (ids, strings, numbers; never model objects
or open files). The job runs inside an application context with its own database session,
removed when it ends. Jobs commit their own work.

Where it runs depends on ``REDIS_URL``:

- set: the job goes on an RQ queue (``JOBS_QUEUE``) in that Redis and is run by separate worker
  processes (``flask worker jobs``; start as many as you like, on any machine that has the same
  settings). Scheduled work is enqueued by ``flask worker schedule`` (see ``portal.worker``).
- not set (the embedded default and the test suite): the job runs in this process, in a daemon
  thread with its own application context, exactly as the portal did before there was a
  queue; nothing needs installing. A job of a process that stops is lost, which is why the
  scheduled round (``flask worker run``) re-does what can be re-done (outbox, reminders).
- ``JOBS_INLINE``: the job runs at once, in the caller's thread (tests that want to see the
  effect synchronously). It still gets its own application context and session.

Why RQ and not Celery: the portal already needs nothing but PostgreSQL, and a queue adds only
Redis. RQ is Redis-only, runs plain importable functions with no task decorators or registry,
is small enough to read (we rely on ``Queue.enqueue`` and ``Worker.work``) and fits a Flask app
whose jobs are few and coarse (a report, an import, a delivery round). Celery brings a broker
abstraction (AMQP, SQS...), result backends, its own scheduler (beat) and configuration surface
that we would carry without using.

A job that fails is logged with its traceback; under RQ it is also kept in the failed-job
registry (``rq info --url $REDIS_URL``). The operations themselves record their failures where
users see them (a report job's status, an import batch's error, an outbox message's attempts).
"""
from __future__ import annotations

import importlib
import logging
import os
import threading
from collections.abc import Callable

from flask import Flask, current_app, has_app_context

log = logging.getLogger(__name__)

_PID = "portal.jobs.pid"   # app.extensions: the process whose database pool is ours


def _path(func: Callable) -> str:
    """``module:qualname``, refusing what a worker could not import by name."""
    name = getattr(func, "__qualname__", "")
    module = getattr(func, "__module__", "")
    if not module or not name or "<" in name or "." in name:
        raise ValueError(f"a job must be a module-level function, not {func!r}")
    return f"{module}:{name}"


def _resolve(path: str) -> Callable:
    module, _sep, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def uses_queue(app: Flask | None = None) -> bool:
    """Whether jobs go to Redis (``REDIS_URL`` set and ``JOBS_INLINE`` off)."""
    app = app or current_app
    return bool(app.config.get("REDIS_URL")) and not app.config.get("JOBS_INLINE")


def enqueue(func: Callable, *args, **kwargs) -> str | None:
    """Run ``func(*args, **kwargs)`` in the background (see the module's doc); answers the RQ
    job id under Redis, else ``None``."""
    app = current_app._get_current_object()
    path = _path(func)
    if app.config.get("JOBS_INLINE"):
        run_in_app(path, args, kwargs, app=app)
        return None
    if app.config.get("REDIS_URL"):
        job = queue(app).enqueue(run_in_app, args=(path, args, kwargs),
                                 job_timeout=int(app.config.get("JOBS_TIMEOUT", 3600)),
                                 result_ttl=int(app.config.get("JOBS_RESULT_TTL", 3600)),
                                 failure_ttl=7 * 86400,
                                 description=f"{path}{args!r}")
        return job.id

    def work():
        try:
            run_in_app(path, args, kwargs, app=app)
        except Exception:  # logged; nothing else would see it in a thread
            log.exception("background job %s failed", path)

    threading.Thread(target=work, name=f"job-{func.__name__}", daemon=True).start()
    return None


def run_in_app(path: str, args: tuple = (), kwargs: dict | None = None, *,
               app: Flask | None = None):
    """What every job runs: resolve the function, run it in a fresh application context."""
    from portal.extensions import db

    if app is None:
        if has_app_context():          # `flask worker jobs` pushed the app's context
            app = current_app._get_current_object()
        else:                          # a bare `rq worker`: make the app from the environment
            from portal import create_app

            app = create_app()
    _forget_inherited_connections(app)
    with app.app_context():
        try:
            return _resolve(path)(*args, **(kwargs or {}))
        finally:
            db.session.remove()


def _forget_inherited_connections(app: Flask) -> None:
    """RQ runs each job in a forked child: the database connections the parent had opened
    must not be shared with it (two processes on one socket). Dropped, not closed."""
    from portal.extensions import db

    pid = os.getpid()
    if app.extensions.get(_PID) not in (None, pid):
        with app.app_context():
            db.engine.dispose(close=False)
    app.extensions[_PID] = pid


# --- Redis ------------------------------------------------------------------------------------

def redis_connection(app: Flask | None = None):
    """One client per app (thread-safe, pooled)."""
    from redis import Redis

    app = app or current_app
    url = app.config.get("REDIS_URL")
    if not url:
        raise RuntimeError("REDIS_URL is not set: jobs run in this process, there is no queue")
    cached = app.extensions.get("portal.redis")
    if cached is None or cached[0] != url:
        try:
            client = Redis.from_url(url)
        except ValueError as err:
            raise RuntimeError(f"REDIS_URL: {err} (expected redis://host:6379/0)") from None
        cached = app.extensions["portal.redis"] = (url, client)
    return cached[1]


def queue(app: Flask | None = None):
    from rq import Queue

    app = app or current_app
    return Queue(app.config.get("JOBS_QUEUE", "portal"), connection=redis_connection(app))


def claim_slot(name: str, seconds: int, app: Flask | None = None) -> bool:
    """True for the first caller in each ``seconds``-long slot of time, across every process
    on this Redis (``SET NX`` with an expiry): several schedulers may run, one enqueues."""
    import time

    slot = int(time.time() // seconds)
    key = f"portal:slot:{name}:{slot}"
    return bool(redis_connection(app).set(key, os.getpid(), nx=True, ex=seconds * 2))
