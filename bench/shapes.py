"""
Events shaped like a busy cluster's, for filling the benchmark's cluster.

A benchmark on identical tiny events flatters everyone: real clusters have many
namespaces, pods and nodes, mostly Normal events with a tail of Warnings whose
count keeps rising, some written the events.k8s.io way (``eventTime``,
``series``, reporting component and instance, no ``lastTimestamp``) and a few
with messages of several KiB (probe output, image pull errors). Names follow the
recorder's ``<object>.<hex>`` pattern.

The shapes are drawn from a seeded generator, so two runs fill the same cluster.
Every time is in the past (at least a minute), so that an event patched during
the benchmark is always the newest one.
"""

from __future__ import annotations

import datetime
import random
from dataclasses import dataclass
from typing import Any

NAMESPACE_COUNT = 50
NODE_COUNT = 40
APPS_PER_NAMESPACE = 5
PODS_PER_APP = 6

# Events are spread over the hour before the fill, as a default --event-ttl keeps.
OLDEST_SECONDS = 3600.0
NEWEST_SECONDS = 60.0

_TEAMS = ("shop", "payments", "search", "identity", "data", "ml", "web", "ops")
_STAGES = ("prod", "staging", "dev", "canary", "perf", "qa", "sandbox")
_APPS = (
    "checkout",
    "cart",
    "api",
    "worker",
    "redis",
    "postgres",
    "kafka",
    "ingest",
    "billing",
    "mailer",
    "frontend",
    "gateway",
    "scheduler-job",
    "indexer",
    "cache",
)
_POD_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


@dataclass(frozen=True, kw_only=True)
class Pod:
    """A pod the generated events are about."""

    namespace: str
    name: str
    uid: str
    replica_set: str
    deployment: str
    node: str


class EventShapes:
    """A seeded source of realistic core/v1 Event bodies, each with a unique name."""

    def __init__(self, *, seed: int = 7, now: datetime.datetime | None = None) -> None:
        self._rng = random.Random(seed)
        self._now = now or datetime.datetime.now(datetime.UTC)
        self._name_base = int(self._now.timestamp() * 1e9)
        self.namespaces = _namespace_names()
        self.nodes = [
            f"node-{index:03d}.pool-a.internal" for index in range(NODE_COUNT)
        ]
        self.pods = [pod for ns in self.namespaces for pod in self._pods_of(ns)]

    def make(self, index: int) -> dict[str, Any]:
        """Return the body of event ``index``; the same index gives the same name."""
        roll = self._rng.random()
        if roll < 0.45:
            body = self._pod_lifecycle()
        elif roll < 0.60:
            body = self._pod_warning()
        elif roll < 0.70:
            body = self._scheduler_event()
        elif roll < 0.82:
            body = self._controller_event()
        elif roll < 0.90:
            body = self._node_event()
        else:
            body = self._long_message()
        involved = body["involvedObject"]
        body["metadata"] = {
            "name": f"{involved['name']}.{self._name_base + index * 7919:x}",
            "namespace": involved.get("namespace") or "default",
        }
        return body

    def timestamp(self, *, ago: float = 0.0) -> str:
        """Return a second-precision time ``ago`` seconds before now, as the API does."""
        moment = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=ago)
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")

    def _pods_of(self, namespace: str) -> list[Pod]:
        pods = []
        for app in self._rng.sample(_APPS, APPS_PER_NAMESPACE):
            replica_set = f"{app}-{self._token(10)}"
            for _ in range(PODS_PER_APP):
                pods.append(
                    Pod(
                        namespace=namespace,
                        name=f"{replica_set}-{self._token(5)}",
                        uid=self._uid(),
                        replica_set=replica_set,
                        deployment=app,
                        node=self._rng.choice(self.nodes),
                    )
                )
        return pods

    def _pod_lifecycle(self) -> dict[str, Any]:
        pod = self._rng.choice(self.pods)
        reason, message, path = self._rng.choice(
            (
                ("Pulling", f'Pulling image "registry.local/{pod.deployment}:1.42.7"', True),
                ("Pulled", f'Successfully pulled image "registry.local/{pod.deployment}:1.42.7" in 1.204s (1.204s including waiting). Image size: 48213344 bytes.', True),
                ("Created", f"Created container: {pod.deployment}", True),
                ("Started", f"Started container {pod.deployment}", True),
                ("Killing", f"Stopping container {pod.deployment}", True),
                ("SandboxChanged", "Pod sandbox changed, it will be killed and re-created.", False),
            )
        )  # fmt: skip
        return self._legacy(
            pod=pod, event_type="Normal", reason=reason, message=message,
            count=1, field_path=f"spec.containers{{{pod.deployment}}}" if path else "",
        )  # fmt: skip

    def _pod_warning(self) -> dict[str, Any]:
        pod = self._rng.choice(self.pods)
        reason, message = self._rng.choice(
            (
                ("BackOff", "Back-off restarting failed container app in pod " + pod.name),
                ("Unhealthy", "Readiness probe failed: HTTP probe failed with statuscode: 503"),
                ("Unhealthy", 'Liveness probe failed: Get "http://10.244.3.17:8080/healthz": context deadline exceeded'),
                ("FailedMount", 'MountVolume.SetUp failed for volume "config" : configmap "app-config" not found'),
            )
        )  # fmt: skip
        count = self._rng.choice((2, 3, 5, 8, 13, 40, 212))
        return self._legacy(
            pod=pod,
            event_type="Warning",
            reason=reason,
            message=message,
            count=count,
            field_path=f"spec.containers{{{pod.deployment}}}",
        )

    def _scheduler_event(self) -> dict[str, Any]:
        # The scheduler writes through events.k8s.io/v1: eventTime and series,
        # reporting controller and instance, and no first/last timestamps.
        pod = self._rng.choice(self.pods)
        scheduled = self._rng.random() < 0.7
        ago = self._ago()
        body: dict[str, Any] = {
            "involvedObject": _pod_ref(pod),
            "reason": "Scheduled" if scheduled else "FailedScheduling",
            "message": (
                f"Successfully assigned {pod.namespace}/{pod.name} to {pod.node}"
                if scheduled
                else "0/40 nodes are available: 12 Insufficient memory, 28 node(s) "
                "didn't match Pod's node affinity/selector. preemption: 0/40 nodes "
                "are available: 40 Preemption is not helpful for scheduling."
            ),
            "type": "Normal" if scheduled else "Warning",
            "eventTime": self._micro_time(ago=ago + 30.0),
            "reportingComponent": "default-scheduler",
            "reportingInstance": "default-scheduler-control-plane-1",
            "action": "Binding" if scheduled else "Scheduling",
            "source": {},
        }
        if not scheduled:
            body["series"] = {
                "count": self._rng.choice((2, 4, 9, 31)),
                "lastObservedTime": self._micro_time(ago=ago),
            }
        return body

    def _controller_event(self) -> dict[str, Any]:
        pod = self._rng.choice(self.pods)
        if self._rng.random() < 0.6:
            kind, name, component = (
                "ReplicaSet",
                pod.replica_set,
                "replicaset-controller",
            )
            reason, message = "SuccessfulCreate", f"Created pod: {pod.name}"
        else:
            kind, name, component = (
                "Deployment",
                pod.deployment,
                "deployment-controller",
            )
            reason = "ScalingReplicaSet"
            message = f"Scaled up replica set {pod.replica_set} from 2 to 6"
        ago = self._ago()
        return {
            "involvedObject": {
                "kind": kind,
                "namespace": pod.namespace,
                "name": name,
                "uid": self._uid(),
                "apiVersion": "apps/v1",
            },
            "reason": reason,
            "message": message,
            "type": "Normal",
            "source": {"component": component},
            "firstTimestamp": self.timestamp(ago=ago),
            "lastTimestamp": self.timestamp(ago=ago),
            "count": 1,
        }

    def _node_event(self) -> dict[str, Any]:
        # Node events are cluster-scoped objects' events: they live in "default".
        node = self._rng.choice(self.nodes)
        reason, event_type, message = self._rng.choice(
            (
                ("NodeNotReady", "Normal", f"Node {node} status is now: NodeNotReady"),
                ("NodeReady", "Normal", f"Node {node} status is now: NodeReady"),
                ("Rebooted", "Warning", f"Node {node} has been rebooted, boot id: {self._uid()}"),
                ("NodeHasDiskPressure", "Normal", f"Node {node} status is now: NodeHasDiskPressure"),
            )
        )  # fmt: skip
        ago = self._ago()
        return {
            "involvedObject": {"kind": "Node", "name": node, "uid": node},
            "reason": reason,
            "message": message,
            "type": event_type,
            "source": {"component": "kubelet", "host": node},
            "firstTimestamp": self.timestamp(ago=ago + 900.0),
            "lastTimestamp": self.timestamp(ago=ago),
            "count": self._rng.choice((1, 1, 3, 7)),
        }

    def _long_message(self) -> dict[str, Any]:
        # Probe output and pull errors carry kilobytes of text into the message.
        pod = self._rng.choice(self.pods)
        frames = "\n".join(
            f"\tat com.example.{pod.deployment}.Handler{line}.call(Handler{line}.java:{40 + line * 3})"
            for line in range(self._rng.randint(30, 70))
        )  # fmt: skip
        message = (
            "Liveness probe failed: HTTP probe failed with statuscode: 500, body: "
            "java.lang.IllegalStateException: connection pool exhausted\n" + frames
        )
        return self._legacy(
            pod=pod,
            event_type="Warning",
            reason="Unhealthy",
            message=message,
            count=self._rng.choice((3, 17, 96)),
            field_path=f"spec.containers{{{pod.deployment}}}",
        )

    def _legacy(
        self,
        *,
        pod: Pod,
        event_type: str,
        reason: str,
        message: str,
        count: int,
        field_path: str,
    ) -> dict[str, Any]:
        ago = self._ago()
        first_ago = ago + (self._rng.uniform(10.0, 900.0) if count > 1 else 0.0)
        involved = _pod_ref(pod)
        if field_path:
            involved["fieldPath"] = field_path
        return {
            "involvedObject": involved,
            "reason": reason,
            "message": message,
            "type": event_type,
            "source": {"component": "kubelet", "host": pod.node},
            "firstTimestamp": self.timestamp(ago=first_ago),
            "lastTimestamp": self.timestamp(ago=ago),
            "count": count,
        }

    def _ago(self) -> float:
        return self._rng.uniform(NEWEST_SECONDS, OLDEST_SECONDS)

    def _micro_time(self, *, ago: float) -> str:
        moment = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=ago)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    def _token(self, length: int) -> str:
        return "".join(self._rng.choices(_POD_ALPHABET, k=length))

    def _uid(self) -> str:
        digits = f"{self._rng.getrandbits(128):032x}"
        return "-".join(
            (digits[:8], digits[8:12], digits[12:16], digits[16:20], digits[20:])
        )


def _namespace_names() -> list[str]:
    names = [f"{team}-{stage}" for stage in _STAGES for team in _TEAMS]
    return names[:NAMESPACE_COUNT]


def _pod_ref(pod: Pod) -> dict[str, Any]:
    return {
        "kind": "Pod",
        "namespace": pod.namespace,
        "name": pod.name,
        "uid": pod.uid,
        "apiVersion": "v1",
    }
