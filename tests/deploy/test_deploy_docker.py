"""The docker target: the generated Dockerfile (pure) and, where an engine runs, a real container."""

from __future__ import annotations

import pytest

from mlops_bot.deploy.targets.docker import SERVER_UID, dockerfile, engine_available


def test_dockerfile_is_non_root_with_healthcheck_and_loopback_probe() -> None:
    text = dockerfile("usr/bin/python3", ["usr/lib/python3/site-packages"])
    lines = text.splitlines()
    assert lines[1] == "FROM scratch"  # built locally: no registry is reachable
    assert f"USER {SERVER_UID}:{SERVER_UID}" in lines
    user_at = lines.index(f"USER {SERVER_UID}:{SERVER_UID}")
    assert any(line.startswith("HEALTHCHECK") for line in lines[user_at:])
    assert "http://127.0.0.1:" in text and "/v2/health/live" in text
    assert lines[-1] == 'ENTRYPOINT ["/usr/bin/python3", "-m", "mlops_bot", "serve"]'
    assert "COPY usr/lib/python3/site-packages /usr/lib/python3/site-packages" in lines


@pytest.mark.docker
def test_engine_round_trip() -> None:
    ok, why = engine_available()
    if not ok:
        pytest.skip(f"docker engine tests need a running engine: {why}")
    import docker

    assert docker.from_env().ping()
