"""The Slack surface of rollbot: thin listeners over the domain in `bot`."""
