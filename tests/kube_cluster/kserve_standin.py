"""A test-side stand-in for KServe's controller, which cannot run here (it needs Knative).

It is NOT KServe: it only moves `status` of the InferenceServices in one namespace the way KServe
documents for Serverless canaries (docs: "Canary Rollout Strategy", v1beta1 InferenceService
status): every change of `spec.predictor` other than `canaryTrafficPercent` makes a new revision
`<name>-predictor-0000N`; once it is "ready", `latestReadyRevision` follows `latestCreatedRevision`
and `traffic` splits `canaryTrafficPercent` to the latest revision and the rest to the previously
rolled-out one (tag `prev`); without `canaryTrafficPercent` the latest revision gets 100 % and
becomes `latestRolledoutRevision`. Revisions of versions listed in `never_ready` stay unready,
with a condition message, as a crash-looping pod would.
"""

from __future__ import annotations

import json
import threading
from typing import Any

GROUP, VERSION, PLURAL = "serving.kserve.io", "v1beta1", "inferenceservices"


class KServeStandIn:
    def __init__(self, api_client: Any, namespace: str, *, interval: float = 0.1) -> None:
        self.api_client = api_client
        self.namespace = namespace
        self.interval = interval
        self.never_ready: set[str] = set()
        self.revision_versions: dict[str, str] = {}
        self.errors: list[str] = []  # revision -> the mlops-bot/version it runs
        self._revisions: dict[str, list[tuple[str, str]]] = {}  # name -> [(revision, spec json)]
        self._rolled_out: dict[str, tuple[str | None, str | None]] = {}  # name -> (latest, previous)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> KServeStandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        from kubernetes import client

        api = client.CustomObjectsApi(self.api_client)
        while not self._stop.wait(self.interval):
            try:
                listed = api.list_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL,
                                                           _request_timeout=30)
                for obj in listed["items"]:
                    status = self.reconcile(obj)
                    if status != obj.get("status"):
                        name = obj["metadata"]["name"]
                        api.patch_namespaced_custom_object_status(
                            GROUP, VERSION, self.namespace, PLURAL, name, {"status": status},
                            _request_timeout=30)
            except Exception as exc:  # keep going, as a controller would; the tests can look
                self.errors.append(repr(exc)[:300])

    def reconcile(self, obj: dict[str, Any]) -> dict[str, Any]:
        name = obj["metadata"]["name"]
        predictor = dict(obj["spec"]["predictor"])
        canary = predictor.pop("canaryTrafficPercent", None)
        spec = json.dumps(predictor, sort_keys=True)
        revisions = self._revisions.setdefault(name, [])
        version = (obj["metadata"].get("annotations") or {}).get("mlops-bot/version", "")
        if not revisions or revisions[-1][1] != spec:
            revisions.append((f"{name}-predictor-{len(revisions) + 1:05d}", spec))
            self.revision_versions[revisions[-1][0]] = version
        latest = revisions[-1][0]
        rolled, previous = self._rolled_out.get(name, (None, None))
        ready = version not in self.never_ready
        if not ready:
            latest_ready = rolled
            traffic = [{"revisionName": rolled, "percent": 100, "latestRevision": False, "tag": "prev"}] \
                if rolled else []
        elif canary is None or rolled is None or rolled == latest:
            if rolled != latest:
                self._rolled_out[name] = (latest, rolled)
                rolled, previous = latest, rolled
            latest_ready = latest
            traffic = [{"revisionName": latest, "percent": 100, "latestRevision": True}]
        else:
            latest_ready = latest
            traffic = [{"revisionName": latest, "percent": int(canary), "latestRevision": True,
                        "tag": "latest"},
                       {"revisionName": rolled, "percent": 100 - int(canary), "latestRevision": False,
                        "tag": "prev"}]
        condition = {"type": "Ready", "status": "True" if ready else "False"}
        if not ready:
            condition.update(reason="RevisionFailed",
                             message=f"Revision \"{latest}\" failed with message: container crash-looping")
        predictor_status: dict[str, Any] = {"latestCreatedRevision": latest, "traffic": traffic}
        if latest_ready:
            predictor_status["latestReadyRevision"] = latest_ready
        if rolled:
            predictor_status["latestRolledoutRevision"] = rolled
        if previous:
            predictor_status["previousRolledoutRevision"] = previous
        return {
            "observedGeneration": obj["metadata"].get("generation"),
            "url": f"http://{name}.{self.namespace}.example.com",
            "conditions": [condition, {**condition, "type": "PredictorReady"}],
            "components": {"predictor": predictor_status},
        }
