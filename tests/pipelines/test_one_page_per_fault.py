"""One page per fault: every simulated fault kind, through the real pipeline and `notify --webhook`.

A fault trips several conditions (an ECC storm is three, a GPU falling off the
bus is an XID and then silence, a node whose GPUs all drop is one silence per
GPU); the person on call must get one page per fault that lists them all,
and later conditions must update that page rather than page again.
A page is a firing incident (fingerprint, start) the webhook had not heard of.
"""

from __future__ import annotations

import time

import pytest

from infra.kafka.broker import free_port
from tests.pipelines.test_detection_end_to_end import FAULTS, WARM_TICK
from tests.stack import wait_for

pytestmark = pytest.mark.integration

#: A node whose every GPU falls off the bus at once: one fault (the node), not one page per GPU.
GPUS = 4
SILENT_NODE = "node-8"
SILENT_SPECS = [f"xid79@{SILENT_NODE}/{g}:{WARM_TICK}" for g in range(GPUS)]
TICKS = 220  # the slowest condition to join (the memory rule, as the leak fills the framebuffer) is near 170


def pages_by_node(bodies: list[dict]) -> dict[str, set[tuple[str, str, str]]]:
    """node -> the firing incidents (fingerprint, start, alertname) the receiver was told about."""
    out: dict[str, set[tuple[str, str, str]]] = {}
    for body in bodies:
        for a in body["alerts"]:
            if a["status"] == "firing":
                out.setdefault(a["labels"].get("node", ""), set()).add(
                    (a["fingerprint"], a["startsAt"], a["labels"]["alertname"]))
    return out


def test_each_fault_kind_pages_once_listing_every_condition(stack, receiver):
    stack.start_pipeline()
    notifier = stack.spawn("notify", "notify", "--webhook", receiver.url,
                           GPUWATCH_NOTIFY_LISTEN=f"127.0.0.1:{free_port()}")
    notifier.wait_for_line("notify: ready")
    stack.simulate(9, GPUS, TICKS, *(spec for *_, spec, _, _ in FAULTS.values()), *SILENT_SPECS)

    expected = {node: names for node, _, _, names, _ in FAULTS.values()}
    expected[SILENT_NODE] = {"GpuXidError", "GpuStoppedReporting"}
    sql = "SELECT node, alertname, annotations FROM gpuwatch.alerts WHERE status = 'firing'"

    def decided():
        seen: dict[str, set[str]] = {}
        for r in stack.query(sql):
            names = seen.setdefault(r["node"], set())
            names.add(r["alertname"])
            names.update(n.strip() for n in r["annotations"].get("conditions", "").split(",") if n.strip())
        return all(names <= seen.get(node, set()) for node, names in expected.items())

    wait_for(decided, 150, interval=1.0, what="every fault's conditions to be decided")
    time.sleep(4)  # a second page would have been delivered by now (group_interval 1 s)

    pages = pages_by_node(receiver.bodies())
    counts = {node: len(pages.get(node, ())) for node in expected}
    assert counts == {node: 1 for node in expected}, f"pages per faulty node: {counts}; {pages}"

    # the one page, updated as conditions joined, lists every condition of the fault
    for node, names in expected.items():
        listed = set()
        for body in receiver.bodies():
            for a in body["alerts"]:
                if a["labels"].get("node") == node and a["status"] == "firing":
                    listed.update(n.strip() for n in a["annotations"].get("conditions", "").split(","))
        assert names <= listed, (node, names - listed)
