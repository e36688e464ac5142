from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _ensure_partitions(sender, using, **kwargs) -> None:
    # Every `migrate` (a fresh install included) leaves this month and the next ones
    # created, so events land in their month partition before beat has ever run.
    from traces import partitions

    partitions.partitions_ensure(using=using)


class TracesConfig(AppConfig):
    name = "traces"
    verbose_name = "Traces and events"

    def ready(self) -> None:
        post_migrate.connect(_ensure_partitions, sender=self)
