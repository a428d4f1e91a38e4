"""Names of the RQ queues, and how their jobs are serialized, in one place."""

from redis import Redis
from rq import Queue
from rq.serializers import JSONSerializer

DELIVERY = "debrief-delivery"
ALL = (DELIVERY,)
# Jobs are a function's name and string ids: JSON holds them, and a worker never unpickles what
# someone with access to Redis put there (pickle runs code on load).
SERIALIZER = JSONSerializer


def queue(name: str, connection: Redis) -> Queue:
    """An RQ queue of ours, with our serializer."""
    return Queue(name, connection=connection, serializer=SERIALIZER)
