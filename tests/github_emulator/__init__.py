"""A GitHub REST API emulator for tests: `with Emulator() as gh: ... gh.url ...`.

See server.py for what it emulates and how to inject faults; `python -m github_emulator` runs it
standalone (for `act` workflow runs), persisting its state to a JSON file.
"""

from github_emulator.server import Emulator, Reply

__all__ = ["Emulator", "Reply"]
