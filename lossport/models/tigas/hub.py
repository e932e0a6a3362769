"""Upstream's published TIGAS weights on the Hugging Face hub.

The weights (``H1merka/TIGAS``, file ``best_model.pt``; which mode they are is read from the
file) are fetched with ``huggingface_hub.hf_hub_download``, which keeps them in the hub cache:
a second call, or any call with ``HF_HUB_OFFLINE=1`` after one download, reads the cache and
needs no network. ``huggingface_hub`` is an optional dependency (``pip install
'lossport[hub]'``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from lossport.errors import CheckpointError

HUB_REPO = "H1merka/TIGAS"
HUB_FILENAME = "best_model.pt"
_ALTERNATIVES = (
    "pass a local checkpoint instead (checkpoint=FILE in Python, --checkpoint FILE on the command line)"
)


def download_checkpoint(
    repo_id: str = HUB_REPO, filename: str = HUB_FILENAME, revision: Optional[str] = None
) -> Path:
    """Local path of the hub checkpoint, downloading it unless it is cached.

    Raises :class:`CheckpointError` naming the alternatives when ``huggingface_hub`` is not
    installed, when the machine is offline and the file is not cached, or when the download
    fails.
    """
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        raise CheckpointError(
            f"downloading the TIGAS weights from the hub needs huggingface_hub: "
            f"pip install 'lossport[hub]', or {_ALTERNATIVES}"
        ) from None
    try:
        return Path(hf_hub_download(repo_id=repo_id, filename=filename, revision=revision))
    # huggingface_hub reports offline/cache misses as FileNotFoundError subclasses
    # (LocalEntryNotFoundError) or ConnectionError (OfflineModeIsEnabled), HTTP failures as
    # OSError subclasses, and the HTTP client's own errors in its own hierarchy: report all.
    except Exception as exc:
        where = f"{repo_id}/{filename}"
        if isinstance(exc, (FileNotFoundError, ConnectionError)):
            raise CheckpointError(
                f"cannot download the TIGAS weights ({where}): offline, or the "
                f"hub is unreachable, and the file is not in the local hub "
                f"cache; connect once to cache it, or {_ALTERNATIVES}"
            ) from exc
        raise CheckpointError(
            f"downloading the TIGAS weights ({where}) failed: {type(exc).__name__}: {exc}; {_ALTERNATIVES}"
        ) from exc
