from django.core.management.base import BaseCommand

from voight.services import team_create


class Command(BaseCommand):
    help = "Create a team (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--slug", required=True)
        parser.add_argument("--name", default="")

    def handle(self, *args, slug, name, **options):
        team = team_create(slug=slug, name=name)
        self.stdout.write(f"team {team.slug} ({team.name}) id={team.pk}")
