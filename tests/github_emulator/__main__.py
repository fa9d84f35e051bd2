"""`python -m github_emulator --port P --state-file F [--repo owner/name] [--permission user=write]`."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from github_emulator.server import Emulator


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="github_emulator", description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--state-file", type=Path, default=None)
    parser.add_argument("--repo", action="append", default=[], help="owner/name to create (repeatable)")
    parser.add_argument(
        "--pull", action="append", default=[], help="owner/name#N:head_ref:head_sha to create a pull request"
    )
    parser.add_argument("--permission", action="append", default=[], help="user=level on every repo")
    parser.add_argument("--app-id", type=int, default=None)
    parser.add_argument("--app-public-key", type=Path, default=None)
    args = parser.parse_args(argv)
    key = args.app_public_key.read_bytes() if args.app_public_key else None
    emu = Emulator(port=args.port, state_file=args.state_file, app_id=args.app_id, app_public_key=key)
    for repo in args.repo:
        emu.add_repo(repo)
        for item in args.permission:
            user, _, level = item.partition("=")
            emu.set_permission(repo, user, level)
    for spec in args.pull:
        repo, _, rest = spec.partition("#")
        number, head_ref, head_sha = [*rest.split(":"), "feature", "0" * 40][:3]
        emu.add_pull(repo, int(number), head_ref=head_ref, head_sha=head_sha)
    print(f"github emulator listening on {emu.url}", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        emu.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        emu._save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
