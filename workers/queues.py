"""Names of the RQ queues, in one place."""

DELIVERY = "debrief-delivery"
ALL = (DELIVERY,)
