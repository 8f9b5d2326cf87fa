"""rollbot: roll Kubernetes workloads back from Slack or a terminal."""
