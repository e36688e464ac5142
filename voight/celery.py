"""The Celery app. Broker: Redis in production; the beat schedule lives in settings."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voight.settings")

app = Celery("voight")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
