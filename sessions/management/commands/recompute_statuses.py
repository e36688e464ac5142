from django.core.management.base import BaseCommand

from sessions.lifecycle import statuses_tick


class Command(BaseCommand):
    help = "Run the periodic status recomputation once (what beat runs every 30 s)."

    def handle(self, *args, **options):
        changed = statuses_tick()
        self.stdout.write(f"{len(changed)} session statuses changed")
