"""Keep the garbage collector's pauses out of request latency.

A loaded model is hundreds of thousands of long-lived Python objects (per-item
neighbour rows, profiles, ids). CPython's cyclic collector walks them again in
every full collection, which pauses whichever request triggered it for tens of
milliseconds (56 ms on the MovieLens model). Objects that will live as long as
the model are moved to the permanent generation once it is loaded; reference
counting still frees them when the model is replaced.
"""

from __future__ import annotations

import gc


def freeze_loaded_model() -> None:
    """Collect what is garbage now, then exempt every surviving object from collection.

    Call after a model is loaded or installed, outside any request.
    """
    gc.collect()
    gc.freeze()


def unfreeze() -> None:
    """Give frozen objects back to the collector (before loading a different model)."""
    gc.unfreeze()
