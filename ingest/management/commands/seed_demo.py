from django.core.management.base import BaseCommand

from ingest.demo import demo_admin, demo_seed, ensure_member
from voight.models import Team


class Command(BaseCommand):
    help = "Fill a demo team with two weeks of realistic agent sessions (once)."

    def add_arguments(self, parser):
        parser.add_argument("--team", default="demo")
        parser.add_argument("--days", type=int, default=14)
        parser.add_argument("--seed", type=int, default=42)
        parser.add_argument("--force", action="store_true", help="seed even if the team exists")

    def handle(self, *args, team, days, seed, force, **options):
        user, password = demo_admin()
        if Team.objects.filter(slug=team).exists() and not force:
            ensure_member(user, Team.objects.get(slug=team))
            self.stdout.write(f"team {team} already seeded; use --force to add more")
            return
        created = demo_seed(slug=team, days=days, seed=seed, admin=user, log=self.stdout.write)
        ensure_member(user, created)
        if password:
            self.stdout.write(f"login: {user.username} / {password}")
        self.stdout.write(f"seeded team {created.slug}")
