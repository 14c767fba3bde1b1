"""
The benchmark: the collector against kubectl, side by side, on one real cluster.

``python -m bench`` starts one local control plane, fills it with events shaped
like a busy cluster's, and at each size measures what a web request pays to show
the latest 100 events: kubectl the way people run it, a naive rewrite with the
typed kubernetes-asyncio models, and ``client.latest(100)`` against a running
collector. It also measures the collector itself: start-up to synced, memory,
and how fast it takes watch frames from the real API server and from a replay.

Every figure comes from one run on one machine and goes to a JSON file, a
Markdown page and a chart; nothing here asserts a target, it only reports.
"""
