"""Evidence in plain words, with units: what a person reads on the page.

Detectors speak in z-scores ("37 scales above normal"); the person paged needs
the value, its unit and what it is compared with ("GPU 3 is 14.2 °C hotter
than its peers (84.1 °C vs 69.9 °C)"). Units come from the metric's name
(``_c`` is °C, ``_w`` W, ``_pct`` %, ``_bytes`` bytes, ``_total`` a counter
whose rate is per second); the comparison from what the detector says its
baseline was (the peers, the GPU's usual value, or a rule's threshold).

>>> from schemas.alerts import Evidence
>>> e = Evidence(metric="gpu_temp_c", value=84.1, baseline=69.9, score=37.0,
...              detail="peer baseline: median of 8 GPUs on the node plus this GPU's usual offset")
>>> describe(e, {"gpu": "3"})
'GPU 3 is 14.2 °C hotter than its 7 peers (84.1 °C vs 69.9 °C)'
>>> describe(Evidence(metric="gpu_temp_c", value=91.0, baseline=85.0, detail="value > 85"), {"gpu": "0"})
'GPU 0 temperature is 91 °C, over the 85 °C threshold'
>>> describe(Evidence(metric="ecc_dbe_volatile_total", value=2.0, baseline=0.0, detail="increase over 60s > 0"),
...          {"gpu": "1"})
'GPU 1 double-bit ECC errors: 2 in the last 60 s, over the 0 threshold'
>>> describe(Evidence(metric="xid_79", value=79.0, detail="GPU has fallen off the bus"), {"gpu": "2"})
'GPU 2: XID 79, GPU has fallen off the bus'
>>> describe(Evidence(metric="ecc_sbe_volatile_total", value=40.0, baseline=0.1, score=9.0,
...                   detail="per-second rate; z-score vs EWMA baseline"), {"gpu": "1"})
'GPU 1 single-bit ECC errors: 40 /s, usually 0.1 /s'
"""

from __future__ import annotations

import math
import re

from schemas.alerts import Evidence

#: metric -> what a person calls it
NAMES = {
    "gpu_temp_c": "temperature", "mem_temp_c": "memory temperature", "gpu_util_pct": "utilisation",
    "mem_util_pct": "memory-bandwidth utilisation", "power_w": "power draw", "power_limit_w": "power limit",
    "sm_clock_mhz": "SM clock", "mem_clock_mhz": "memory clock", "fb_used_bytes": "GPU memory used",
    "fb_free_bytes": "GPU memory free", "ecc_sbe_volatile_total": "single-bit ECC errors",
    "ecc_dbe_volatile_total": "double-bit ECC errors", "retired_pages_total": "retired pages",
    "nvlink_crc_errors_total": "NVLink CRC errors", "pcie_replay_total": "PCIe replays",
    "nvlink_rx_bytes_s": "NVLink receive", "nvlink_tx_bytes_s": "NVLink transmit",
    "pcie_rx_bytes_s": "PCIe receive", "pcie_tx_bytes_s": "PCIe transmit", "job_tokens_per_s": "throughput",
    "job_loss": "training loss", "samples": "samples", "heartbeat": "heartbeats",
}

_UNITS = (("_bytes_s", "B/s"), ("_per_s", "/s"), ("_c", "°C"), ("_w", "W"), ("_pct", "%"), ("_mhz", "MHz"),
          ("_bytes", "B"), ("_j", "J"))


def unit_of(metric: str, detail: str = "") -> str:
    """The unit a value of ``metric`` is in; counters' evidence is a per-second rate.

    >>> unit_of("gpu_temp_c"), unit_of("fb_used_bytes"), unit_of("ecc_dbe_volatile_total", "per-second rate")
    ('°C', 'B', '/s')
    """
    if metric.endswith("_total"):
        return "/s" if "rate" in detail else ""
    return next((u for suffix, u in _UNITS if metric.endswith(suffix)), "")


def fmt(value: float, unit: str) -> str:
    """A number a person reads at a glance, with its unit.

    >>> fmt(84.06, "°C"), fmt(68719476736.0, "B"), fmt(1234567.0, "B/s"), fmt(0.5, "%")
    ('84.1 °C', '64.0 GiB', '1.2 MiB/s', '0.5 %')
    """
    if unit.startswith("B"):
        rest = unit[1:]
        for scale, prefix in ((2**40, "Ti"), (2**30, "Gi"), (2**20, "Mi"), (2**10, "Ki")):
            if abs(value) >= scale:
                return f"{value / scale:.1f} {prefix}B{rest}"
        return f"{value:.0f} B{rest}"
    text = f"{value:.0f}" if abs(value) >= 100 or value == int(value) else f"{value:.1f}" if abs(value) >= 1 \
        else f"{value:.2g}"
    return f"{text} {unit}".strip()


def describe(e: Evidence, labels: dict[str, str] | None = None) -> str:
    """One line of plain words for one piece of evidence."""
    labels = labels or {}
    if re.fullmatch(r"s?xid_\d+", e.metric):  # a driver event: its code and what it means
        who = f"GPU {labels['gpu']}: " if labels.get("gpu") not in (None, "", "-1") else ""
        return f"{who}{e.metric.replace('_', ' ').upper()}, {e.detail}"[:300]
    if e.value is None or not math.isfinite(e.value):
        return f"{NAMES.get(e.metric, e.metric)}: {e.detail}".strip(": ")[:300]
    unit = unit_of(e.metric, e.detail)
    name = NAMES.get(e.metric, e.metric.replace("_", " "))
    who = f"GPU {labels['gpu']} " if labels.get("gpu") not in (None, "", "-1") else ""
    value = fmt(e.value, unit)
    detail = e.detail.lower()
    if e.baseline is None or not math.isfinite(e.baseline):
        return f"{who}{name} is {value}"
    base = fmt(e.baseline, unit)
    if detail.startswith(("value ", "increase ")):  # a threshold rule: baseline is the threshold
        side = "over" if ">" in detail else "under"
        window = re.match(r"increase over ([\d.]+)s", detail)
        if window:
            return f"{who}{name}: {value} in the last {float(window.group(1)):g} s, {side} the {base} threshold"
        return f"{who}{name} is {value}, {side} the {base} threshold"
    if "peer" in detail:
        diff = e.value - e.baseline
        m = re.search(r"median of (\d+) gpus", detail)
        peers = f"its {int(m.group(1)) - 1} peers" if m else "its peers"
        if unit == "°C":
            return f"{who or 'it '}is {fmt(abs(diff), unit)} {'hotter' if diff >= 0 else 'cooler'} than {peers} " \
                   f"({value} vs {base})"
        return f"{who}{name} is {fmt(abs(diff), unit)} {'above' if diff >= 0 else 'below'} {peers} ({value} vs {base})"
    if detail.startswith("template "):
        return e.detail[:300]
    return f"{who}{name}: {value}, usually {base}"


def evidence_lines(evidence: list[Evidence], labels: dict[str, str] | None = None) -> list[str]:
    """Every piece of evidence as a line of plain words (the page's body)."""
    return [describe(e, labels) for e in evidence]
