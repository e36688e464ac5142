from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from sessions.models import Agent
from voight.models import Team
from voight.services import api_key_create


class Command(BaseCommand):
    help = "Create an API key. The secret is printed alone on the last line, once."

    def add_arguments(self, parser):
        parser.add_argument("--team", required=True, help="team slug")
        parser.add_argument("--scopes", default="ingest", help="comma list: ingest,read,write")
        parser.add_argument("--agent", default="", help="bind the key to this agent slug")
        parser.add_argument("--user", default="", help="bind the key to this username")
        parser.add_argument("--name", default="")

    def handle(self, *args, team, scopes, agent, user, name, **options):
        try:
            team_obj = Team.objects.get(slug=team)
        except Team.DoesNotExist:
            raise CommandError(f"no team {team!r}; create it with create_team") from None
        agent_obj = None
        if agent:
            agent_obj, _ = Agent.objects.get_or_create(team=team_obj, slug=agent)
        user_obj = None
        if user:
            user_obj = get_user_model().objects.filter(username=user).first()
            if user_obj is None:
                raise CommandError(f"no user {user!r}")
        try:
            key, secret = api_key_create(
                team=team_obj, scopes=[s.strip() for s in scopes.split(",") if s.strip()],
                name=name, agent=agent_obj, user=user_obj,
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"key {key.prefix}… for team {team_obj.slug}, scopes {','.join(key.scopes)}")
        self.stdout.write(secret)
