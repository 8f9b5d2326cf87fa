"""What a Kubernetes object is to rollbot: its raw JSON as a dict.

The client's model classes drop fields they do not know (see `bot.kube`), so
objects cross every boundary as plain dicts. One alias, here, with no imports:
the light modules (the engine, the strategies, the CLI) use it without loading
the Kubernetes client.
"""

from __future__ import annotations

from typing import Any

Body = dict[str, Any]
