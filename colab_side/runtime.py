"""What kind of runtime this is: Colab, Kaggle or a generic Linux box, and what follows from it."""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

# Both services reclaim a runtime after about 12 hours at most; a generic box has no limit.
_LIFETIME = {"colab": timedelta(hours=12), "kaggle": timedelta(hours=12)}
_WORKDIR = {"colab": "/content", "kaggle": "/kaggle/working"}
_POLICY = {
    "colab": "Note: Colab's free tier does not allow SSH or remote shells (see its FAQ); use it on a paid plan "
             "or at your own risk.",
    "kaggle": "Note: Kaggle may end a session that starts an SSH server; save your work to /kaggle/working "
              "and commit it often.",
}


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
