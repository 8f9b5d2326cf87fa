"""Telling the world about rollbacks: the change events the store queues
(`bot/change_events.py`) delivered to PagerDuty, webhooks and a status page.

`delivery.py` is the deliverer (one at a time across processes, in order,
each destination once); one module per destination builds its requests
(`pagerduty.py`, `webhook.py`, `statuspage.py`) over `sending.py`, which
sorts the answers into delivered, try later and refused for good.
"""
