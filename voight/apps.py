from django.apps import AppConfig


class VoightConfig(AppConfig):
    name = "voight"
    verbose_name = "Voight"

    def ready(self):
        # Make the configured Celery app current here rather than in voight/__init__.py,
        # which stays import-free so the hook client starts fast.
        # percentiles registers its SQLite aggregate on every new connection.
        from voight import celery, checks, percentiles  # noqa: F401
