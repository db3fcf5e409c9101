"""What kind of runtime this is: Colab, Kaggle or a generic Linux box, and what follows from it."""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

# Both services reclaim a runtime after about 12 hours at most; a generic box has no limit.
_LIFETIME = {"colab": timedelta(hours=12), "kaggle": timedelta(hours=12)}
_WORKDIR = {"colab": "/content", "kaggle": "/kaggle/working"}
# Said where it applies, never worked around: the services' own words, and what follows for an SSH server.
_POLICY = {
    "colab": "Note: Colab's FAQ lists, for runtimes used free of charge, \"remote control such as SSH shells, remote "
             "desktops\", and for all runtimes \"connecting to remote proxies\", which a tunnel out of the runtime "
             "is; the route Google offers is its own `colab ssh --proxy-mode` (google-colab-cli), which rdev uses with "
             "'rdev connect colab --colab-session SESSION' on the laptop.",
    "kaggle": "Note: on Kaggle an SSH tunnel needs the notebook's Internet setting on (Settings > Internet), and "
              "Kaggle may end a session that starts an SSH server; save your work to /kaggle/working often.",
}
KAGGLE_INTERNET = ("On Kaggle, turn the notebook's Internet setting on (Settings > Internet): without it no tunnel "
                   "reaches its service.")


def detect(environ: dict[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    if "COLAB_RELEASE_TAG" in env or "COLAB_GPU" in env:
        return "colab"
    if "KAGGLE_KERNEL_RUN_TYPE" in env or "KAGGLE_URL_BASE" in env:
        return "kaggle"
    return "generic"


def default_workdir(runtime: str, home: Path) -> str:
    return _WORKDIR.get(runtime, str(home))


def expires(runtime: str, started: datetime) -> datetime | None:
    lifetime = _LIFETIME.get(runtime)
    return started + lifetime if lifetime else None


def policy_note(runtime: str) -> str | None:
    """What the runtime's provider says about running an SSH server there, if anything."""
    return _POLICY.get(runtime)
