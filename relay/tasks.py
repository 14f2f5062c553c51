from config.celery import app
from relay import idempotency
from relay.probes import disabled_keys_probe


@app.task
def probe_disabled_keys() -> int:
    """Re-enable the upstream keys that work again; return how many."""
    return sum(result.ok for _, result in disabled_keys_probe())


@app.task
def purge_idempotency_records() -> int:
    """Forget the Idempotency-Key answers past their 24 hours; return how many."""
    return idempotency.purge_expired()
