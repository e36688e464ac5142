"""The Gemini CLI connect snippet (templates/sessions/partials/connect_gemini.html): what it
shows must be what the CLI reads and what `voight install-hooks --gemini` writes."""

import html
import json
import re

from django.template.loader import render_to_string

from voight.client import install_gemini


def snippet(rendered: str, element_id: str) -> str:
    found = re.search(rf'<pre class="snippet" id="{element_id}">(.*?)</pre>', rendered, re.S)
    assert found, element_id
    return html.unescape(found.group(1))


def test_the_settings_snippet_is_the_installers_telemetry_for_this_server():
    rendered = render_to_string("sessions/partials/connect_gemini.html",
                                {"server": "https://voight.example"})
    settings = json.loads(snippet(rendered, "connect-gemini-settings"))
    installed = install_gemini.merge({}, url="https://voight.example", agent=None)
    assert settings["telemetry"] == installed["telemetry"]
    assert snippet(rendered, "connect-gemini-env") == (
        'export OTEL_EXPORTER_OTLP_HEADERS="Authorization=Bearer <your-ingest-key>"')
    assert "voight install-hooks --gemini --url https://voight.example" in rendered


def test_the_server_is_escaped():
    rendered = render_to_string("sessions/partials/connect_gemini.html",
                                {"server": 'https://x"><script>'})
    assert "<script>" not in rendered
