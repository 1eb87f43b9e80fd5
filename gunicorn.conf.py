"""gunicorn settings for the credits service (`gunicorn credits_project.wsgi`)."""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", min(4, multiprocessing.cpu_count() * 2)))
# gevent: each worker serves many connections at once, so slow clients (a partial body, a
# trickle of headers) wait on their own greenlet instead of holding a whole worker; database
# calls yield too (psycopg 3 waits cooperatively once gevent has patched the standard library,
# which the worker does before loading the application).
# (gunicorn's own, stopping without a traceback on Ctrl-C: see the class).
worker_class = os.environ.get(
    "GUNICORN_WORKER_CLASS", "credits_project.gunicorn_worker.CleanStopGeventWorker"
)
# Connections one worker serves at once; the rest wait in the listen backlog.
worker_connections = int(os.environ.get("GUNICORN_WORKER_CONNECTIONS", 200))
threads = int(os.environ.get("GUNICORN_THREADS", 1))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", 30))
graceful_timeout = 30
keepalive = 5
# The contract's limit: long percent-encoded customer ids must fit in the request line.
limit_request_line = 8190
accesslog = os.environ.get("GUNICORN_ACCESSLOG", "-") or None
errorlog = "-"
# No control socket: several instances (tests, benchmarks) may run side by side.
control_socket_disable = True
# Credentials a client put in a URL (`?api_key=...`) are redacted from the access log.
logger_class = "credits_project.access_log.RedactingLogger"
