"""One Prometheus exposition for all workers: each sample labelled with its worker.

Any worker answers ``/metrics``: it asks the others for theirs (over their sockets)
and merges them, so a scraper sees the whole machine at one address and can sum or
split by ``worker``. Chosen over prometheus-client's multiprocess mode, which needs
its directory set before the library is imported, cannot run custom collectors (the
source-failure counts are one) and reduces gauges by a fixed rule per metric.
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.utils import floatToGoString

SUFFIXED = {"counter": "_total"}
"""Types whose HELP/TYPE lines name the sample, not the family (as prometheus-client writes)."""


def merged_exposition(texts: Mapping[int, str]) -> str:
    """The expositions in ``texts`` (by worker index) as one, with a ``worker`` label."""
    families: dict[str, tuple[str, str, list[str]]] = {}
    for worker, text in sorted(texts.items()):
        for family in text_string_to_metric_families(text):
            name = family.name + SUFFIXED.get(family.type, "")
            _, _, samples = families.setdefault(name, (family.documentation, family.type, []))
            for sample in family.samples:
                labels = {**sample.labels, "worker": str(worker)}
                samples.append(f"{sample.name}{{{_labels(labels)}}} "
                               f"{floatToGoString(sample.value)}")
    lines: list[str] = []
    for name, (documentation, kind, samples) in families.items():
        help_text = documentation.replace("\\", r"\\").replace("\n", r"\n")
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", *samples]
    return "\n".join(lines) + "\n"


def _labels(labels: Mapping[str, str]) -> str:
    return ",".join(f'{key}="{_escaped(value)}"' for key, value in labels.items())


def _escaped(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
