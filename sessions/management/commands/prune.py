from django.core.management.base import BaseCommand

from sessions.retention import retention_prune


class Command(BaseCommand):
    help = "Delete data older than each team's retention window (what beat runs nightly)."

    def handle(self, *args, **options):
        results = retention_prune()
        if not results:
            self.stdout.write("no team has a retention window")
        for slug, counts in results.items():
            summary = ", ".join(f"{n} {kind}" for kind, n in counts.items()) or "nothing"
            self.stdout.write(f"{slug}: deleted {summary}")
