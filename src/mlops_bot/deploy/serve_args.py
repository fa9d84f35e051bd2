"""The `mlops-bot serve` words every deploy target starts its model server with: the one home for
how a model's `model.trusted_types` reach a server (local process, docker container, KServe
predictor, Argo Rollouts pod), so a model that needs them loads the same way on every target.

The types go on the command line as `--trusted-type NAME` (repeatable), as a person would start the
server by hand; an environment variable would be a second spelling of the same list. A name that no
list may hold (`os.system`, a bare name) is refused here, when the command or manifest is rendered,
so nothing is started or applied that the server would refuse at start. Pure functions.
"""

from __future__ import annotations

from collections.abc import Iterable

from mlops_bot.model_file import allowed_types

TRUSTED_TYPE_FLAG = "--trusted-type"
POD_PORT = 8080
POD_MODEL_DIR = "/mnt/models"


def trusted_type_args(trusted_types: Iterable[str]) -> list[str]:
    """`--trusted-type NAME` for each name, in order; an IntegrityError for a name never trusted."""
    names = [str(name) for name in trusted_types]
    allowed_types(names)
    return [word for name in names for word in (TRUSTED_TYPE_FLAG, name)]


def pod_args(model: str, version: str, storage_uri: str, sha256: str | None,
             trusted_types: Iterable[str] = ()) -> list[str]:
    """The container args of a cluster pod (KServe predictor, Argo Rollout; the image's entrypoint
    is `mlops-bot`): download the version's release asset from `storage_uri`, refuse it unless its
    SHA-256 is `sha256`, and serve it on the pod network with the model's trusted types."""
    args = ["serve", model, "--host", "0.0.0.0", "--port", str(POD_PORT),  # noqa: S104 - pod network
            "--model-url", storage_uri, "--model-dir", POD_MODEL_DIR, "--version", version]
    if sha256:
        args += ["--model-sha256", sha256]
    return args + trusted_type_args(trusted_types)
