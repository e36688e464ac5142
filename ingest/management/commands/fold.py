"""`manage.py fold`: fold staged deliveries in a process of its own (`ingest.folder.run`),
for web processes that run with `VOIGHT_FOLD=process`."""

import os
import signal

from django.core.management.base import BaseCommand

from ingest import folder


class Command(BaseCommand):
    help = "Fold staged deliveries into events and rollups as they arrive (VOIGHT_FOLD=process)."

    def add_arguments(self, parser):
        parser.add_argument("--nice", type=int, default=0,
                            help="lower this process's CPU priority by N (answers go first)")
        parser.add_argument("--poll-ms", type=float, default=folder.POLL_SECONDS * 1000,
                            help="how often the backlog is read")

    def handle(self, *args, nice: int, poll_ms: float, **options):
        if nice:
            os.nice(nice)
        # SIGTERM lets the fold in progress finish (or roll back) and the loop end.
        signal.signal(signal.SIGTERM, lambda *_: folder.stop(timeout=0))
        folder.run(poll_ms / 1000)
