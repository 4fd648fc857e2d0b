"""Agency workers: the Celery app, the specialist agents and the thin Celery tasks."""
