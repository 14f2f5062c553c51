from celery import shared_task

from billing.services import holds_release_expired


@shared_task
def release_expired_holds() -> int:
    return holds_release_expired()
