import logging.config
import os

from celery import Celery
from celery.signals import setup_logging, task_failure

from ops.metrics import TASK_FAILURES

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("switchboard")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_failure.connect
def _count_task_failure(sender=None, **kwargs):
    TASK_FAILURES.labels(getattr(sender, "name", None) or "unknown").inc()


if os.environ.get("SWITCHBOARD_LOG_FORMAT", "").strip().lower() == "json":
    # JSON logs: Celery keeps Django's LOGGING instead of setting up its own
    # plain-text handlers (connecting this signal is what tells it to).
    @setup_logging.connect
    def _django_logging(**kwargs):
        from django.conf import settings

        logging.config.dictConfig(settings.LOGGING)
