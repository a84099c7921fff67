"""gunicorn settings for the portal: ``gunicorn -c gunicorn.conf.py wsgi:app``.

Every value can be changed from the environment (names below); see docs/DEPLOY.md.
"""
import multiprocessing
import os


def _int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    if not value.isdigit() or int(value) < 1:
        raise SystemExit(f"{name}: {value!r} is not a whole number of at least 1")
    return int(value)


# Where to listen: behind the reverse proxy, on the loopback or a private address only.
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")

# Processes: WEB_CONCURRENCY, by default 2 x cores + 1, at most 12 (each holds a database
# connection pool of its own: keep workers x threads x servers under PostgreSQL's
# max_connections).
workers = _int("WEB_CONCURRENCY", min(2 * multiprocessing.cpu_count() + 1, 12))
# Threads per process: requests that wait on the database or the network share a process.
worker_class = "gthread"
threads = _int("GUNICORN_THREADS", 4)

# A request taking longer than this is killed (the short audit PDF is made in the request;
# long reports go to the background). Uploads up to MAX_CONTENT_LENGTH must arrive in time.
timeout = _int("GUNICORN_TIMEOUT", 120)
# On SIGTERM (deploys), let requests in progress finish for this long.
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30)
keepalive = 5
# Restart a process now and then (memory held by large reports and imports goes back).
max_requests = _int("GUNICORN_MAX_REQUESTS", 2000)
max_requests_jitter = 200

# Not preloaded: each worker process builds the app itself, so none shares a database
# connection or a thread (report jobs run in threads without Redis) made before the fork.
preload_app = False

# The proxy's X-Forwarded-For / -Proto are trusted from these addresses only (the reverse
# proxy's). The app reads them itself when PROXY_FIX is set.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")

# Logs to stdout/stderr (journald, docker); the access log with the client as the proxy saw it
# and the time taken in microseconds.
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-")
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
access_log_format = ('%({x-forwarded-for}i)s %(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s '
                     '"%(f)s" "%(a)s" %(D)sus')

proc_name = "service-standards-portal"
