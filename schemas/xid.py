"""NVIDIA XID and NVSwitch SXID errors: what each one means and what to do about it.

The node agent reads these from kernel messages and the log pipeline finds them
in tailed logs; both must agree on the meaning, severity and recommended action
of a code, so the catalog lives here, in the contract, once.

The catalog follows NVIDIA's Xid catalog (docs.nvidia.com/deploy/xid-errors) for
Ampere and newer GPUs, keeping every code NVIDIA documents as needing an
operator's action. Its "resolution buckets" map onto our actions:

=====================  ===============
NVIDIA bucket          ``Action``
=====================  ===============
RESTART_APP            ``restart_app``
RESET_GPU              ``reset_gpu``
RESTART_BM / _VM       ``reboot``
CHECK_MECHANICALS,
CONTACT_SUPPORT        ``inspect_hw``
=====================  ===============

>>> lookup(79).action, lookup(79).severity
('reboot', 'critical')
>>> lookup(12345) is None
True
>>> parse_kernel_line("NVRM: Xid (PCI:0000:3b:00): 79, pid=0, GPU has fallen off the bus.")
XidLine(pci_bus_id='0000:3b:00', code=79, pid=0, text='GPU has fallen off the bus.')
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple

from schemas.events import Action, EventSeverity


@dataclass(frozen=True)
class XidInfo:
    """One catalog entry. ``investigate`` is what to look at if it keeps happening."""

    code: int
    name: str
    meaning: str
    severity: EventSeverity
    action: Action
    investigate: str = ""

    @property
    def title(self) -> str:
        return f"XID {self.code}: {self.meaning}"


def _x(code: int, name: str, meaning: str, severity: EventSeverity, action: Action, investigate: str = "") -> XidInfo:
    return XidInfo(code, name, meaning, severity, action, investigate)


_NVLINK5 = "NVLink5 {} error; the GPU's NVLink traffic is interrupted"
_NVLINK_INV = "run the NVLink error workflow (nvidia-smi nvlink -e); if it repeats, reseat or replace the link/cable"

#: Every XID kept, by code. Codes NVIDIA marks "unused" or purely informational are left out.
CATALOG: dict[int, XidInfo] = {x.code: x for x in (
    _x(8, "ROBUST_CHANNEL_FIFO_ERROR_IDLE_TIMEOUT", "GPU stopped processing (channel idle timeout)", "warning",
       "restart_app", "driver or application bug; check for earlier XIDs and thermal/power events"),
    _x(13, "ROBUST_CHANNEL_GR_EXCEPTION", "Graphics engine exception (illegal instruction or address in a kernel)",
       "warning", "restart_app", "usually the application; if it follows the GPU across jobs, run GPU diagnostics"),
    _x(31, "ROBUST_CHANNEL_FIFO_ERROR_MMU_ERR_FLT", "GPU memory page fault (illegal address access)", "warning",
       "restart_app", "usually the application; repeated faults on one GPU point at hardware"),
    _x(32, "PBDMA_PUSHBUFFER_CRC_MISMATCH", "Invalid or corrupted push buffer stream", "warning", "restart_app",
       "PCIe or memory corruption if it repeats; check PCIe replay counters"),
    _x(38, "ROBUST_CHANNEL_FIFO_ERROR_FIFO_METHOD", "Driver firmware error", "warning", "reset_gpu",
       "update the driver; contact support if it persists"),
    _x(43, "ROBUST_CHANNEL_RESETCHANNEL_VERIF_ERROR", "GPU stopped processing: the application hit a fault and its "
       "channel was reset", "warning", "restart_app", "the GPU is healthy; investigate the application"),
    _x(44, "ROBUST_CHANNEL_GR_FAULT_DURING_CTXSW", "Graphics engine fault during context switch", "critical",
       "reset_gpu", "contact support if it persists after a reset"),
    _x(45, "ROBUST_CHANNEL_PREEMPTIVE_REMOVAL", "Preemptive cleanup after an earlier error, or the application "
       "was killed", "info", "restart_app", "look for the XID logged just before it; on its own it is benign"),
    _x(46, "ROBUST_CHANNEL_DISP_MISSED_NOTIFIER", "GPU stopped processing", "critical", "reset_gpu",
       "contact support if it persists"),
    _x(48, "ROBUST_CHANNEL_DBE_ERROR", "Double-bit (uncorrectable) ECC error", "critical", "reset_gpu",
       "reset remaps the affected row; replace the GPU if remapping fails or row-remap failure is reported"),
    _x(54, "ROBUST_CHANNEL_AUXPOWER_ERROR", "Auxiliary power is not connected to the GPU", "critical", "inspect_hw",
       "check the GPU's power cables"),
    _x(56, "ROBUST_CHANNEL_DISPLAY_ENGINE_ERROR", "Display engine error", "warning", "reset_gpu"),
    _x(57, "ROBUST_CHANNEL_FB_LINK_ERROR", "Error programming the video memory interface", "critical", "reset_gpu",
       "contact support if it persists: memory interface hardware"),
    _x(61, "PMU_BREAKPOINT", "Internal micro-controller breakpoint/warning (PMU halt)", "critical", "reset_gpu",
       "contact support if it persists"),
    _x(62, "PMU_HALT_ERROR", "Internal micro-controller halt", "critical", "reset_gpu",
       "thermal or firmware problem; check temperatures and contact support if it persists"),
    _x(63, "ROBUST_CHANNEL_ROW_REMAP_PENDING", "ECC page retirement or row remapping recorded; it takes effect "
       "after a GPU reset", "warning", "reset_gpu", "watch the remapped-row counters for growth"),
    _x(64, "ROBUST_CHANNEL_ROW_REMAP_FAILURE", "ECC page retirement or row remapping failed", "critical",
       "inspect_hw", "the GPU has run out of spare rows or the remap failed: replace the GPU"),
    _x(68, "ROBUST_CHANNEL_NVDEC0_ERROR", "Video decoder (NVDEC) exception", "warning", "restart_app",
       "driver or application bug"),
    _x(69, "ROBUST_CHANNEL_GR_CLASS_ERROR", "Graphics engine class error", "warning", "restart_app"),
    _x(73, "ROBUST_CHANNEL_NVENC2_ERROR", "Video encoder (NVENC) exception", "warning", "restart_app"),
    _x(74, "NVLINK_ERROR", "NVLink error: a link reported a fatal or unrecoverable fault", "critical", "reset_gpu",
       _NVLINK_INV),
    _x(79, "ROBUST_CHANNEL_GPU_HAS_FALLEN_OFF_THE_BUS", "GPU has fallen off the bus", "critical", "reboot",
       "check PCIe seating, risers, power and thermals; replace the GPU if it recurs"),
    _x(81, "ROBUST_CHANNEL_VGA_SUBSYSTEM_ERROR", "VGA subsystem error", "critical", "reset_gpu"),
    _x(92, "EXCESSIVE_SBE_INTERRUPTS", "High single-bit ECC error rate", "warning", "inspect_hw",
       "watch the ECC and remapped-row counters; schedule a GPU diagnostic"),
    _x(93, "INFOROM_ERASE_LIMIT_EXCEEDED", "Non-fatal violation of the provisioned InfoROM wear limit", "warning",
       "inspect_hw", "contact support: the InfoROM is wearing out"),
    _x(94, "ROBUST_CHANNEL_CONTAINED_ERROR", "Contained ECC error: only the affected applications were stopped",
       "warning", "restart_app", "reset the GPU when convenient so the row remap takes effect"),
    _x(95, "ROBUST_CHANNEL_UNCONTAINED_ERROR", "Uncontained ECC error: every application on the GPU is affected",
       "critical", "reset_gpu", "replace the GPU if the reset fails or the error repeats"),
    _x(109, "ROBUST_CHANNEL_CTXSW_TIMEOUT_ERROR", "Context switch timeout", "warning", "restart_app",
       "driver or application; contact support if it repeats with a healthy application"),
    _x(110, "SEC_FAULT_ERROR", "Security fault in the GPU", "critical", "reset_gpu", "contact support"),
    _x(119, "GSP_RPC_TIMEOUT", "Timeout waiting for the GPU System Processor (GSP) to answer", "critical",
       "reset_gpu", "update the driver; contact support if it persists"),
    _x(120, "GSP_ERROR", "GPU System Processor (GSP) error", "critical", "reset_gpu",
       "update the driver; contact support if it persists"),
    _x(121, "C2C_ERROR", "Chip-to-chip (C2C) link corrected error", "warning", "inspect_hw",
       "watch for repeats; reset the GPU at the next maintenance window"),
    _x(122, "SPI_PMU_RPC_READ_FAIL", "SPI PMU RPC read failure", "warning", "reset_gpu"),
    _x(123, "SPI_PMU_RPC_WRITE_FAIL", "SPI PMU RPC write failure", "warning", "reset_gpu"),
    _x(124, "SPI_PMU_RPC_ERASE_FAIL", "SPI PMU RPC erase failure", "warning", "reset_gpu"),
    _x(136, "NVLINK_TRAINING_FAILED", "NVLink link training failed", "critical", "reset_gpu", _NVLINK_INV),
    _x(137, "NVLINK_FLA_PRIV_ERR", "NVLink FLA privilege error: an access outside the application's rights",
       "warning", "restart_app", "the application, not the hardware"),
    _x(140, "ECC_UNRECOVERABLE_ERROR", "Unrecovered ECC error in GPU memory", "critical", "reset_gpu",
       "replace the GPU if it repeats after a reset"),
    _x(143, "GPU_INIT_FAILURE", "GPU initialisation failure", "critical", "reset_gpu",
       "reboot if the reset fails; then check mechanicals and contact support"),
    _x(144, "NVLINK_SAW_ERROR", _NVLINK5.format("SAW (switch access window)"), "critical", "reset_gpu", _NVLINK_INV),
    _x(145, "NVLINK_RLW_ERROR", _NVLINK5.format("RLW (remote link window)"), "critical", "reset_gpu", _NVLINK_INV),
    _x(146, "NVLINK_TLW_ERROR", _NVLINK5.format("TLW (transaction layer)"), "critical", "reset_gpu", _NVLINK_INV),
    _x(147, "NVLINK_TREX_ERROR", _NVLINK5.format("TREX (traffic replay)"), "critical", "reset_gpu", _NVLINK_INV),
    _x(148, "NVLINK_NVLPW_CTRL_ERROR", _NVLINK5.format("NVLPW control"), "critical", "reset_gpu", _NVLINK_INV),
    _x(149, "NVLINK_NETIR_ERROR", _NVLINK5.format("NETIR (network interface)"), "critical", "reset_gpu",
       _NVLINK_INV),
    _x(150, "NVLINK_MSE_ERROR", _NVLINK5.format("MSE (management engine)"), "critical", "reset_gpu", _NVLINK_INV),
    _x(151, "KEY_ROTATION_ERROR", "Confidential-computing key rotation error", "critical", "reset_gpu"),
    _x(154, "GPU_RECOVERY_ACTION_CHANGED", "The driver changed the GPU's required recovery action", "warning",
       "reset_gpu", "the message says which action: see recovery_action()"),
    _x(155, "NVLINK_SW_DEFINED_ERROR", "NVLink software-defined error", "critical", "reset_gpu", _NVLINK_INV),
    _x(156, "RESOURCE_RETIREMENT_EVENT", "A GPU resource was retired", "warning", "reset_gpu",
       "watch the remapped-row and retired-page counters"),
    _x(157, "RESOURCE_RETIREMENT_FAILURE", "Retiring a GPU resource failed", "critical", "inspect_hw",
       "replace the GPU"),
)}


def lookup(code: int) -> XidInfo | None:
    """The catalog entry for an XID, or None for codes that need no action or are unknown."""
    return CATALOG.get(code)


def recovery_action(text: str) -> Action | None:
    """The action an XID 154 message asks for (``... to 0x2 (Node Reboot Required)``).

    >>> recovery_action("GPU recovery action changed from 0x0 (None) to 0x2 (Node Reboot Required)")
    'reboot'
    """
    m = re.search(r"to 0x([0-9a-fA-F]+)", text)
    if not m:
        return None
    return {0: "none", 1: "reset_gpu", 2: "reboot", 3: "drain_node", 4: "reset_gpu", 6: "reset_gpu",
            7: "reboot"}.get(int(m.group(1), 16))


def sxid_info(code: int, text: str) -> XidInfo:
    """Classify an NVSwitch SXID from its own message, which says Fatal or Non-fatal.

    Fabric Manager resets the GPUs on a fatal SXID's links; a non-fatal one is
    counted and only matters if it keeps coming.

    >>> sxid_info(20034, "Fatal, Link 44 LTSSM Fault Up").severity
    'critical'
    """
    fatal = bool(re.match(r"\s*fatal\b", text, re.IGNORECASE))
    if fatal:
        return XidInfo(code, "SXID_FATAL", "NVSwitch fatal error", "critical", "reset_gpu",
                       "reset the GPUs on the affected links (Fabric Manager does this); "
                       "reboot if the reset fails; inspect the NVSwitch tray if it repeats")
    return XidInfo(code, "SXID_NONFATAL", "NVSwitch non-fatal error", "warning", "none",
                   "count it; inspect the link if the rate keeps rising")


class XidLine(NamedTuple):
    """An NVRM ``Xid`` kernel line, parsed. ``pid`` is None when the driver did not know it."""

    pci_bus_id: str
    code: int
    pid: int | None
    text: str

    @property
    def source(self) -> str:
        return "xid"


class SxidLine(NamedTuple):
    """An NVSwitch ``SXid`` kernel line, parsed. SXIDs carry no pid."""

    pci_bus_id: str
    code: int
    pid: int | None
    text: str

    @property
    def source(self) -> str:
        return "sxid"


# "NVRM: Xid (PCI:0000:3b:00): 79, pid=0, name=..., text" ; older drivers omit "PCI:".
_XID = re.compile(r"NVRM: Xid \((?:PCI:)?(?P<pci>[0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}(?:\.[0-7])?)\): "
                  r"(?P<code>\d+)(?:,\s*(?P<rest>.*))?$")
# "nvidia-nvswitch3: SXid (PCI:0000:c4:00.0): 20034, Fatal, Link 44 LTSSM Fault Up"
_SXID = re.compile(r"SXid \((?:PCI:)?(?P<pci>[0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}(?:\.[0-7])?)\): "
                   r"(?P<code>\d+)(?:,\s*(?P<rest>.*))?$")
# Newer drivers also say "NVRM: GPU at 0000:01:00.0 has fallen off the bus." without an XID number.
_OFF_BUS = re.compile(r"NVRM: GPU at (?:PCI:)?(?P<pci>[0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}(?:\.[0-7])?)"
                      r":? has fallen off the bus")
_PID = re.compile(r"^pid=(?P<pid>'?<?[\w-]*>?'?),\s*")
_NAME = re.compile(r"^name=[^,]*,\s*")


def normalize_pci_bus_id(bus_id: str) -> str:
    """One spelling for a GPU's PCI address, whoever printed it.

    NVML says ``00000000:3B:00.0``, the kernel says ``PCI:0000:3b:00``; both become
    ``0000:3b:00`` (4-digit domain, bus, device; lower case; function dropped).

    >>> normalize_pci_bus_id("00000000:3B:00.0"), normalize_pci_bus_id("PCI:0000:3b:00")
    ('0000:3b:00', '0000:3b:00')
    """
    s = bus_id.strip().lower()
    if s.startswith("pci:"):
        s = s[4:]
    s = s.split(".", 1)[0]
    parts = s.split(":")
    if len(parts) == 2:
        parts = ["0000", *parts]
    if len(parts) != 3:
        return s
    return f"{parts[0][-4:].rjust(4, '0')}:{parts[1].rjust(2, '0')}:{parts[2].rjust(2, '0')}"


def parse_kernel_line(line: str) -> XidLine | SxidLine | None:
    """Parse one kernel message line (kmsg, dmesg, journalctl or syslog form), or None.

    >>> parse_kernel_line("6,1,2,-;NVRM: Xid (PCI:0000:ca:00): 13, pid='<unknown>', name=<unknown>, Graphics Exception")
    XidLine(pci_bus_id='0000:ca:00', code=13, pid=None, text='Graphics Exception')
    >>> parse_kernel_line("nvidia-nvswitch0: SXid (PCI:0000:05:00.0): 12028, Non-fatal, Link 32 egress").source
    'sxid'
    """
    if "Xid" not in line:
        if "fallen off the bus" in line and (m := _OFF_BUS.search(line)) is not None:
            return XidLine(normalize_pci_bus_id(m["pci"]), 79, None, "GPU has fallen off the bus.")
        return None
    line = line.rstrip("\r\n")
    if (m := _XID.search(line)) is not None:
        rest = m["rest"] or ""
        pid: int | None = None
        if (pm := _PID.match(rest)) is not None:
            raw = pm["pid"].strip("'")
            pid = int(raw) if raw.isdigit() else None
            rest = rest[pm.end():]
        if (nm := _NAME.match(rest)) is not None:
            rest = rest[nm.end():]
        return XidLine(normalize_pci_bus_id(m["pci"]), int(m["code"]), pid, rest.strip())
    if (m := _SXID.search(line)) is not None:
        if (m["rest"] or "").startswith(("Severity ", "Data {")):
            return None  # detail lines that follow an SXID's first line
        return SxidLine(normalize_pci_bus_id(m["pci"]), int(m["code"]), None, (m["rest"] or "").strip())
    return None


def classify(parsed: XidLine | SxidLine) -> XidInfo | None:
    """The catalog view of a parsed line: SXIDs by their Fatal/Non-fatal word, XID 154 by
    the action its message names; None for an XID that needs no action."""
    if parsed.source == "sxid":
        return sxid_info(parsed.code, parsed.text)
    info = lookup(parsed.code)
    if info is not None and info.code == 154:
        act = recovery_action(parsed.text)
        if act is not None:
            sev: EventSeverity = "info" if act == "none" else ("critical" if act == "reboot" else "warning")
            info = XidInfo(154, info.name, info.meaning, sev, act, info.investigate)
    return info


__all__ = ["CATALOG", "SxidLine", "XidInfo", "XidLine", "classify", "lookup", "normalize_pci_bus_id",
           "parse_kernel_line", "recovery_action", "sxid_info"]
