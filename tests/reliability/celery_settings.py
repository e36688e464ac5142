"""Settings of the Celery processes the fault tests start: the product's, with the Redis
transport's redelivery shortened from an hour to seconds.

With `acks_late` a task a killed worker was running stays unacknowledged in Redis and is put
back on the queue once it is older than `visibility_timeout` (kombu's default: 1 h), swept
every `unacked_restore_interval` × `unacked_restore_throttle` seconds by a live worker.
"""

from voight.settings import *  # noqa: F403

CELERY_BROKER_TRANSPORT_OPTIONS = {
    # Longer than the fault test holds a task before killing its worker: a live worker would
    # otherwise put a task it is still running back on the queue.
    "visibility_timeout": 4,
    "unacked_restore_interval": 1,
    "unacked_restore_throttle": 1,
}
