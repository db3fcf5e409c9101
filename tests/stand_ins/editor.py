"""A stand-in for an editor's command-line launcher (`code`, `cursor`, `codium`, ...), for a machine
with no screen.

Like the real launchers, `--list-extensions` prints one installed extension id per line and exits
0, and `--version` prints the version, the commit ($RDEV_STANDIN_COMMIT) and the architecture; any other call is taken as "open a window" and exits 0 at once. Every call's arguments are
appended as one JSON line to `<RDEV_STANDIN_DIR>/editor-calls.jsonl`, with the name it was run as.
The installed extensions are the comma-separated ids in RDEV_STANDIN_EXTENSIONS.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    name = os.environ.get("RDEV_STANDIN_AS", "code")
    with (Path(os.environ["RDEV_STANDIN_DIR"]) / "editor-calls.jsonl").open("a", encoding="utf-8") as record:
        record.write(json.dumps({"as": name, "argv": argv}) + "\n")
    if argv == ["--version"]:
        print(f"1.99.0\n{os.environ.get('RDEV_STANDIN_COMMIT', '2' * 40)}\nx64")
    if argv == ["--list-extensions"]:
        for extension in filter(None, os.environ.get("RDEV_STANDIN_EXTENSIONS", "").split(",")):
            print(extension)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
