import os

from django.core.wsgi import get_wsgi_application

from voight.unread_body import DrainUnreadBody

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voight.settings")

# Draining what a view left unread lets a client that sends its whole body before reading
# (urllib, the hook client) see a 413 instead of a reset (voight/unread_body.py).
application = DrainUnreadBody(get_wsgi_application())
