"""
event-collector: the service that list-watches Kubernetes Events into a
deduplicated store and serves the latest N over a Unix socket.

Run it with ``python -m collector``; read it with the ``client`` package.
"""
