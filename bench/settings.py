"""The service's own settings plus the benchmark's reference endpoint (see `bench/urls.py`).

Used only by `make bench`: the reference route never exists in production URLs.
"""

from credits_project.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
