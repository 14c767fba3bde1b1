"""An example Django site that shows the latest Kubernetes events from the collector."""
