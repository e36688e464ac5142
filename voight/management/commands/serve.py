"""`manage.py serve`: the embedded default in one process.

Migrates, creates the demo login and data once, starts the periodic work in-process and
serves HTTP and websockets with daphne. In production run the processes separately instead
(README: gunicorn for HTTP, daphne for /ws/, Celery worker and beat).
"""

from __future__ import annotations

import os

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from ingest.demo import demo_admin, demo_seed, ensure_member
from voight.models import Team

LOGIN_FILE = "demo-login.txt"


class Command(BaseCommand):
    help = "Run Voight (embedded default): migrate, seed the demo once, serve, schedule."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("VOIGHT_HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--no-demo", action="store_true", help="skip the demo data")

    def handle(self, *args, host, port, no_demo, **options):
        call_command("migrate", interactive=False, verbosity=0)
        self.stdout.write("database ready")
        login = self._login(seed=not no_demo)
        from voight import scheduler

        # With Redis, Celery beat runs the schedule; starting ours too would run it twice.
        in_process_beat = not settings.REDIS_URL
        if in_process_beat:
            scheduler.start()
        url = f"http://{host}:{port}/"
        self.stdout.write(self.style.SUCCESS(f"Voight is running at {url}"))
        self.stdout.write(f"login: {login}")
        self.stdout.flush()
        import daphne.server
        from daphne.endpoints import build_endpoint_description_strings

        from voight.asgi import application
        from voight.embedded_http import CappedHTTPFactory

        # daphne's Server builds its factory inside run(), from this module global: the
        # capped one keeps request bodies bounded (voight/embedded_http.py).
        daphne.server.HTTPFactory = CappedHTTPFactory
        try:
            daphne.server.Server(
                application=application,
                endpoints=build_endpoint_description_strings(host=host, port=port),
                verbosity=0,
            ).run()
        finally:
            if in_process_beat:
                scheduler.stop()

    def _login(self, *, seed: bool) -> str:
        """Create the demo admin once; its password is kept next to the embedded database
        (the embedded default is a single-user local install) so every start can say it."""
        user, password = demo_admin()
        login_path = settings.VAR_DIR / LOGIN_FILE
        if password:
            login_path.write_text(f"{user.username} / {password}\n")
            login_path.chmod(0o600)
        if seed and not Team.objects.filter(slug="demo").exists():
            self.stdout.write("seeding the demo team (two weeks of agent sessions)…")
            self.stdout.flush()
            demo_seed(admin=user, log=self.stdout.write)
        for team in Team.objects.filter(slug="demo"):
            ensure_member(user, team)
        if login_path.exists():
            return login_path.read_text().strip()
        return f"{user.username} (password set earlier; reset with manage.py changepassword)"
