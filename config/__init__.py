import sys

# httpx's command-line client (httpx._main), imported by `import httpx`
# whenever click, pygments and rich are installed, costs every process about
# 5 MB for a command none of ours runs. A None entry makes that import fail
# as if they were missing, which httpx expects (its `main` then only says so).
sys.modules.setdefault("httpx._main", None)

# The Celery app (config.celery) is not imported here, as Django's Celery
# guide does, but by the task modules that need it (@app.task): a process
# that never queues a task, the relay's, does not carry Celery (15 MB).
# `celery --app config` finds config.celery by itself.
