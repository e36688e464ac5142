from django.core.management.base import BaseCommand

from ingest.analytics_rollups import all_sessions_refresh
from sessions.models import Session


class Command(BaseCommand):
    help = ("Recount the analytics rollups (a session's tool outcomes and Edit / Write lines, "
            "its tool and skill tallies) from its tool calls and events. The migration that "
            "added them ran it once; run it again after restoring events by hand.")

    def add_arguments(self, parser):
        parser.add_argument("--team", help="only this team's sessions (slug)")

    def handle(self, *args, **options):
        sessions = Session.objects.all()
        if options["team"]:
            sessions = sessions.filter(team__slug=options["team"])
        self.stdout.write(f"{all_sessions_refresh(sessions)} sessions recounted")
