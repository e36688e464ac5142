import gc
import os

from django.core.wsgi import get_wsgi_application

from voight.unread_body import DrainUnreadBody

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voight.settings")

# Draining what a view left unread lets a client that sends its whole body before reading
# (urllib, the hook client) see a 413 instead of a reset (voight/unread_body.py).
application = DrainUnreadBody(get_wsgi_application())

# What is loaded by now (Django and the apps: ~115k objects) is never garbage.
# Frozen, every full collection stops rescanning it; a batch of 1,000 events allocates
# enough to set several off (docs/scaling.md §2: ~8 % of a batch request's CPU).
gc.freeze()
