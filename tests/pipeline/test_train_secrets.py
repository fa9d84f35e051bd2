"""Secrets never leave their step: the training command (the pull request's code) gets an
allow-listed environment, the secrets we hold are masked in train.log, the error line, the `::error`
annotation and the report, and a timeout kills every process of the run, `setsid` daemons included.
Real subprocesses, real validation runs."""

from __future__ import annotations

import base64
import json
import os
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from mlops_bot import redaction
from mlops_bot.cli import main
from mlops_bot.config import load_config
from mlops_bot.demo.dataset import generate
from mlops_bot.errors import ConfigError, TrainingError
from mlops_bot.pipeline.command import run_command, training_environment
from mlops_bot.pipeline.validate import validate

TOKEN = "ghs_" + "Q7" * 18
WEBHOOK = "whsec-" + "k3" * 12
PEM_BODY = "MIIEowIBAAKCAQEA" + "x9" * 24
PRIVATE_KEY = f"-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}\n{'z8' * 20}\n-----END RSA PRIVATE KEY-----\n"
SECRETS = {"GITHUB_TOKEN": TOKEN, "MLOPS_BOT_WEBHOOK_SECRET": WEBHOOK,
           "MLOPS_BOT_APP_PRIVATE_KEY": PRIVATE_KEY}
ALL_SECRET_TEXT = [TOKEN, WEBHOOK, PEM_BODY, "z8" * 20]

# Prints its environment to a file and, as if it had found them elsewhere, every secret to stdout.
LEAKY = """\
import json, os, sys, pandas as pd
json.dump(dict(os.environ), open(sys.argv[1], "w"))
print("token", {token!r})
print("auth", {basic!r})
print({pem!r})
h = pd.read_csv(os.environ["MLOPS_HOLDOUT_PATH"])
pd.DataFrame({{"applicant_id": h["applicant_id"], "prediction": 0}}).to_csv(
    os.environ["MLOPS_PREDICTIONS_PATH"], index=False)
if len(sys.argv) > 2:
    sys.exit("could not reach the API with " + {token!r})
"""


def _project(root: Path, command: str, **train: object) -> Path:
    (root / "data").mkdir(parents=True, exist_ok=True)
    generate(200, seed=1).to_csv(root / "data" / "train.csv", index=False)
    generate(150, seed=2, id_start=10_000).to_csv(root / "data" / "holdout.csv", index=False)
    basic = base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()
    (root / "leaky.py").write_text(LEAKY.format(token=TOKEN, basic=basic, pem=PRIVATE_KEY))
    config = {
        "model": {"name": "credit-risk", "task": "classification"},
        "train": {"command": command, "predictions_path": "preds.csv", **train},
        "data": {"train": "data/train.csv", "holdout": "data/holdout.csv", "target": "default",
                 "id": "applicant_id"},
        "gates": {"accuracy": {"min": 0.0}},
        "bootstrap": {"samples": 100},
    }
    path = root / ".github" / "mlops.yml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MLOPS_BOT_ADMIN_TOKEN", "admin-" + "t" * 20)
    monkeypatch.setenv("SOME_RUNNER_VARIABLE", "not for the command")
    monkeypatch.setenv("MY_SETTING", "passed on request")
    monkeypatch.setenv("LC_ALL", "C.UTF-8")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")


def _assert_clean(text: str) -> None:
    for secret in ALL_SECRET_TEXT:
        assert secret not in text


def test_the_command_gets_only_the_allow_list_and_its_log_is_masked(tmp_path: Path, secret_env: None) -> None:
    config = _project(tmp_path, f"python leaky.py {tmp_path / 'env.json'}", env=["MY_SETTING"])
    run = validate(load_config(config), tmp_path / "out")
    assert run.exit_code == 0
    seen = json.loads((tmp_path / "env.json").read_text())
    for name in [*SECRETS, "MLOPS_BOT_ADMIN_TOKEN", "SOME_RUNNER_VARIABLE"]:
        assert name not in seen
    assert seen["MY_SETTING"] == "passed on request"  # named in train.env
    assert seen["LC_ALL"] == "C.UTF-8" and seen["HTTPS_PROXY"] == "http://proxy.internal:3128"
    contract = {"PATH", "MLOPS_TRAIN_PATH", "MLOPS_HOLDOUT_PATH", "MLOPS_PREDICTIONS_PATH", "MLOPS_SEED"}
    assert contract <= set(seen)
    log = (tmp_path / "out" / "train.log").read_text()
    _assert_clean(log)
    assert "token ***" in log and "auth ***" in log and "BEGIN RSA PRIVATE KEY" in log
    for artifact in ("report.md", "report.json"):
        _assert_clean((tmp_path / "out" / artifact).read_text())
    assert not (tmp_path / "out.train.log").exists()  # moved into the report on success


def test_a_failing_commands_last_line_is_masked_everywhere(tmp_path: Path, secret_env: None,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    config = _project(tmp_path, f"python leaky.py {tmp_path / 'env.json'} fail")
    code = main(["validate", "--config", str(config), "--output", str(tmp_path / "out"), "--quiet"])
    captured = capsys.readouterr()
    assert code == 2
    _assert_clean(captured.err)
    _assert_clean(captured.out)  # the ::error annotation
    assert "could not reach the API with ***" in captured.err
    assert "::error::" in captured.out and "could not reach the API with ***" in captured.out
    # The log the error quotes still exists (the staging directory is gone) and is masked too.
    quoted = Path(captured.err.split("log: ")[1].split(";")[0])
    assert quoted == tmp_path / "out.train.log" and quoted.is_file()
    _assert_clean(quoted.read_text())
    with pytest.raises(TrainingError) as info:
        validate(load_config(config), tmp_path / "out")
    _assert_clean(str(info.value))


def test_train_env_cannot_ask_for_our_secrets(tmp_path: Path, secret_env: None) -> None:
    with pytest.raises(ConfigError, match="GITHUB_TOKEN is mlops-bot's own secret"):
        training_environment(os.environ, ["GITHUB_TOKEN"])
    with pytest.raises(ConfigError, match="never passed"):
        training_environment(os.environ, ["MLOPS_BOT_APP_ID"])
    with pytest.raises(ConfigError, match=r"train\.env"):  # only names
        load_config(_project(tmp_path, "python leaky.py x", env=["A=B"]))
    # A secret-looking variable the user passes on purpose is still masked in what we write.
    env = training_environment({"WANDB_API_KEY": "wandb-" + "9" * 30}, ["WANDB_API_KEY"])
    assert env == {"WANDB_API_KEY": "wandb-" + "9" * 30}
    assert redaction.redact("key wandb-" + "9" * 30) == "key ***"


def test_redaction_of_registered_values_urls_and_log_records(caplog: pytest.LogCaptureFixture) -> None:
    minted = "ghs_minted" + "5" * 26
    redaction.register(minted)
    assert redaction.redact(f"fetch https://x-access-token:{minted}@github.com/a/b failed") == \
        "fetch https://***@github.com/a/b failed"
    assert redaction.redact("short 12345 values stay") == "short 12345 values stay"
    import logging

    logger = logging.getLogger("mlops_bot.test_redaction")
    redaction.install_log_redaction(logger)
    handler = logging.StreamHandler()
    logger.addHandler(handler)
    try:
        redaction.install_log_redaction(logger)
        record = logger.makeRecord("x", logging.INFO, "f", 1, "token %s in use", (minted,), None)
        assert handler.filter(record) and record.getMessage() == "token *** in use"
    finally:
        logger.removeHandler(handler)


GRANDCHILDREN = """\
import os, sys, time
pids = sys.argv[1]
if os.fork() == 0:            # leaves the process group, stays in the session
    os.setpgid(0, 0)
    open(pids + ".pgid", "w").write(str(os.getpid()))
    time.sleep(300)
    os._exit(0)
if os.fork() == 0:            # a daemon: new session, parent exits, reparented away from us
    os.setsid()
    if os.fork() == 0:
        open(pids + ".setsid", "w").write(str(os.getpid()))
        time.sleep(300)
    os._exit(0)
time.sleep(300)
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc and setsid semantics")
def test_timeout_kills_the_whole_run_including_a_setsid_daemon(tmp_path: Path) -> None:
    (tmp_path / "spawn.py").write_text(textwrap.dedent(GRANDCHILDREN))
    pids = tmp_path / "pid"
    with pytest.raises(TrainingError, match="timed out after 3s") as info:
        # 3 s: the children must have written their pid files; waiting for the files is not needed
        # for correctness (kill_run finds them either way), only for the assertion below.
        run_command(f"python spawn.py {pids}", workdir=tmp_path, env={"PATH": os.environ["PATH"]},
                    timeout=3, log_path=tmp_path / "logs" / "train.log")
    assert str(tmp_path / "logs" / "train.log") in str(info.value)
    deadline = time.monotonic() + 30  # an upper bound on waiting for files, not a speed assertion
    while not (Path(f"{pids}.pgid").exists() and Path(f"{pids}.setsid").exists()):
        assert time.monotonic() < deadline, "the children never started"
        time.sleep(0.05)
    for suffix in ("pgid", "setsid"):
        pid = int(Path(f"{pids}.{suffix}").read_text())
        assert not _alive(pid), f"the {suffix} child {pid} survived the timeout"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc and setsid semantics")
def test_a_daemon_left_by_a_successful_command_is_killed(tmp_path: Path) -> None:
    daemon = tmp_path / "daemon.pid"
    script = textwrap.dedent(f"""\
        import os, time
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                open({str(daemon)!r} + ".tmp", "w").write(str(os.getpid()))
                os.rename({str(daemon)!r} + ".tmp", {str(daemon)!r})
                time.sleep(300)
            os._exit(0)
        while not os.path.exists({str(daemon)!r}):
            time.sleep(0.01)
        """)
    (tmp_path / "leave.py").write_text(script)
    run = run_command("python leave.py", workdir=tmp_path, env={"PATH": os.environ["PATH"]}, timeout=120,
                      log_path=tmp_path / "train.log")
    assert run.returncode == 0
    assert not _alive(int(daemon.read_text()))


def test_the_log_is_masked_while_the_command_runs(tmp_path: Path) -> None:
    """A runner (or a user) may read train.log before the command ends: a secret the command prints
    is masked on its way to the disk, not only when the command is over."""
    import threading

    minted = "ghs_" + "L1" * 18
    redaction.register(minted)
    go = tmp_path / "go"
    (tmp_path / "talk.py").write_text(textwrap.dedent(f"""\
        import os, sys, time
        print("calling the API with", {minted!r}, flush=True)
        while not os.path.exists({str(go)!r}):
            time.sleep(0.02)
        """))
    log = tmp_path / "train.log"
    done: list[object] = []
    runner = threading.Thread(target=lambda: done.append(run_command(
        "python talk.py", workdir=tmp_path, env={"PATH": os.environ["PATH"]}, timeout=300, log_path=log)))
    runner.start()
    try:
        deadline = time.monotonic() + 240
        while "calling the API" not in (log.read_text() if log.exists() else ""):
            assert time.monotonic() < deadline and runner.is_alive(), "the line never reached the log"
            time.sleep(0.05)
        assert not done, "the command was still waiting for the go file"
        assert log.read_text() == "calling the API with ***\n"
    finally:
        go.touch()
        runner.join()
    assert log.read_text() == "calling the API with ***\n"


def test_a_secret_across_a_cut_of_a_long_line_is_still_masked(tmp_path: Path) -> None:
    from mlops_bot.pipeline.command import MaskedLogPump

    secret = "sk-live-" + "P4" * 20
    read_end, write_end = os.pipe()
    with open(tmp_path / "log", "wb") as log, os.fdopen(read_end, "rb", buffering=0) as source:
        pump = MaskedLogPump(source, log, redaction.Redactor([secret]), max_line=1000, keep=100)
        with os.fdopen(write_end, "wb") as sink:
            for cut in (990, 1000, 1010, 2990):  # the secret straddles and follows piece boundaries
                sink.write(b"a" * (cut - 20) + secret.encode() + b"b" * 3000)
            sink.write(b"\nend")
        pump.finish()
    text = (tmp_path / "log").read_text()
    assert secret not in text and "P4P4P4P4" not in text
    assert text.count("***") == 4 and text.endswith("\nend")
    assert len(text) == 4 * 3000 + sum(c - 20 for c in (990, 1000, 1010, 2990)) + 4 * 3 + 4


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc and setsid semantics")
def test_an_escaped_process_holding_the_log_pipe_cannot_hang_the_run(tmp_path: Path) -> None:
    """A process that leaves the session and clears its environment escapes the kill (only a cgroup
    would catch it) and keeps the output pipe open: the run still ends, with the log it wrote."""
    escaped = tmp_path / "escaped.pid"
    TICKER = "import time\nwhile True:\n    print('tick', flush=True)\n    time.sleep(0.05)"
    script = textwrap.dedent(f"""\
        import os, sys, time
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                open({str(escaped)!r} + ".tmp", "w").write(str(os.getpid()))
                os.rename({str(escaped)!r} + ".tmp", {str(escaped)!r})
                os.execve(sys.executable, [sys.executable, "-c", {TICKER!r}], {{}})
            os._exit(0)
        while not os.path.exists({str(escaped)!r}):
            time.sleep(0.01)
        print("trained", flush=True)
        """)
    (tmp_path / "escape.py").write_text(script)
    try:
        run = run_command("python escape.py", workdir=tmp_path, env={"PATH": os.environ["PATH"]},
                          timeout=300, log_path=tmp_path / "train.log")
        assert run.returncode == 0
        assert "trained\n" in (tmp_path / "train.log").read_text()
    finally:
        if escaped.exists():
            os.kill(int(escaped.read_text()), 9)
