"""Which job a GPU is working for: pid -> container, Kubernetes pod and namespace, or Slurm job.

It reads what the kernel already knows. ``/proc/<pid>/cgroup`` names the
container runtime's scope (Docker, containerd, CRI-O), the kubelet's pod slice
(with the pod's UID) and Slurm's ``job_<id>/step_<n>`` directories, under
cgroup v1 and v2 alike. The pod's name and namespace come from the kubelet's
log directory ``/var/log/pods/<namespace>_<name>_<uid>``, or from the
process's own environment where the Downward API put them. The environment
also names Slurm jobs and any job id the operator lists in ``job_env``.

Results are cached per (pid, process start time), so a recycled pid never
inherits the previous process's job, and a scrape costs one dict lookup per
GPU process.

>>> parse_cgroup("0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1a2b3c4d_5e6f_7a8b_9c0d_1e2f3a4b5c6d.slice/cri-containerd-" + "ab" * 32 + ".scope")
{'pod_uid': '1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d', 'container': 'abababababab'}
>>> parse_cgroup("0::/system.slice/slurmstepd.scope/job_4242/step_0/user/task_0")
{'slurm_job': '4242', 'slurm_step': '0'}
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from pydantic import Field

from agents.collectors.base import CollectorConfig

log = logging.getLogger("gpuwatch.agent.attribution")

_POD = re.compile(r"pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})")
_CONTAINER = re.compile(r"(?:^|[/-])(?:docker-|cri-containerd-|crio-|containerd-|libpod-)?([0-9a-f]{64})(?:\.scope)?$")
_SLURM_JOB = re.compile(r"/job_(\d+)(?:/step_([A-Za-z0-9_]+))?")


class AttributionConfig(CollectorConfig):
    proc_root: Path = Path("/proc")
    #: Where the kubelet keeps ``<namespace>_<pod>_<uid>`` directories.
    pod_log_root: Path = Path("/var/log/pods")
    #: Environment variables that name the job, first match wins (after Slurm's own).
    job_env: list[str] = Field(default_factory=lambda: ["GPUWATCH_JOB", "JOB_NAME", "TORCHELASTIC_RUN_ID"])
    #: Read /proc/<pid>/environ (needs root, or the same user as the job).
    read_environ: bool = True


def parse_cgroup(text: str) -> dict[str, str]:
    """Container, pod UID and Slurm job named by a ``/proc/<pid>/cgroup`` file's contents."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        path = line.split(":", 2)[-1].strip()
        if not path or path == "/":
            continue
        if "pod_uid" not in out and (m := _POD.search(path)):
            out["pod_uid"] = m.group(1).replace("_", "-")
        if "container" not in out:
            last = path.rstrip("/").rsplit("/", 1)[-1]
            if (m := _CONTAINER.search(last)) is not None:
                out["container"] = m.group(1)[:12]
        if "slurm_job" not in out and (m := _SLURM_JOB.search(path)):
            out["slurm_job"] = m.group(1)
            if m.group(2):
                out["slurm_step"] = m.group(2)
    return out


def parse_environ(raw: bytes, wanted: set[str]) -> dict[str, str]:
    """The wanted variables from a NUL-separated ``/proc/<pid>/environ``."""
    out = {}
    for item in raw.split(b"\0"):
        key, sep, value = item.partition(b"=")
        if sep:
            k = key.decode(errors="replace")
            if k in wanted:
                out[k] = value.decode(errors="replace")
    return out


_K8S_ENV = ("POD_NAME", "POD_NAMESPACE", "KUBERNETES_POD_NAME", "KUBERNETES_NAMESPACE")
_SLURM_ENV = ("SLURM_JOB_ID", "SLURM_JOB_NAME", "SLURM_JOB_USER", "SLURM_STEP_ID")


class Attributor:
    """pid -> labels ({job, pod, namespace, container, slurm_job, ...}), cached per process."""

    def __init__(self, config: AttributionConfig | None = None) -> None:
        self.config = config or AttributionConfig()
        self._cache: dict[int, tuple[str, dict[str, str]]] = {}
        self._pods: dict[str, tuple[str, str]] = {}
        self._wanted = set(_K8S_ENV) | set(_SLURM_ENV) | set(self.config.job_env)
        self.counts = {"resolved": 0, "unattributed": 0, "errors": 0}

    def _read(self, pid: int, name: str, binary: bool = False):
        p = self.config.proc_root / str(pid) / name
        return p.read_bytes() if binary else p.read_text(errors="replace")

    def _start_time(self, pid: int) -> str:
        try:
            stat = self._read(pid, "stat")
        except OSError:
            return ""
        fields = stat.rsplit(")", 1)[-1].split()
        return fields[19] if len(fields) > 19 else ""

    def _pod_name(self, uid: str) -> tuple[str, str] | None:
        if uid not in self._pods:
            self._refresh_pods()
        return self._pods.get(uid)

    def _refresh_pods(self) -> None:
        try:
            entries = os.listdir(self.config.pod_log_root)
        except OSError:
            return
        for d in entries:
            parts = d.split("_")
            if len(parts) >= 3:
                self._pods[parts[-1]] = (parts[0], "_".join(parts[1:-1]))

    def labels_for_pid(self, pid: int) -> dict[str, str]:
        start = self._start_time(pid)
        hit = self._cache.get(pid)
        if hit is not None and hit[0] == start:
            return hit[1]
        labels = self._resolve(pid)
        self._cache[pid] = (start, labels)
        self.counts["resolved" if labels else "unattributed"] += 1
        return labels

    def _resolve(self, pid: int) -> dict[str, str]:
        labels: dict[str, str] = {}
        try:
            labels.update(parse_cgroup(self._read(pid, "cgroup")))
        except OSError as e:
            self.counts["errors"] += 1
            log.debug("cannot read cgroup of pid %d: %s", pid, e)
        env: dict[str, str] = {}
        if self.config.read_environ:
            try:
                env = parse_environ(self._read(pid, "environ", binary=True), self._wanted)
            except OSError:
                pass
        if "pod_uid" in labels and (pod := self._pod_name(labels["pod_uid"])):
            labels["namespace"], labels["pod"] = pod
        pod = env.get("POD_NAME") or env.get("KUBERNETES_POD_NAME")
        ns = env.get("POD_NAMESPACE") or env.get("KUBERNETES_NAMESPACE")
        if pod:
            labels.setdefault("pod", pod)
        if ns:
            labels.setdefault("namespace", ns)
        if env.get("SLURM_JOB_ID"):
            labels.setdefault("slurm_job", env["SLURM_JOB_ID"])
        if env.get("SLURM_JOB_NAME"):
            labels["slurm_job_name"] = env["SLURM_JOB_NAME"]
        if env.get("SLURM_JOB_USER"):
            labels["user"] = env["SLURM_JOB_USER"]
        job = next((env[k] for k in self.config.job_env if env.get(k)), None)
        labels["job"] = job or labels.get("slurm_job") or labels.get("pod") or labels.get("container") or ""
        if not labels["job"]:
            del labels["job"]
        return {k: v[:256] for k, v in labels.items()}

    def gpu_labels(self, gpu_pids: dict[int, list[int]]) -> dict[int, dict[str, str]]:
        """Labels for each GPU: the union over its processes (distinct values joined by ',')."""
        out: dict[int, dict[str, str]] = {}
        seen: set[int] = set()
        for gpu, pids in gpu_pids.items():
            merged: dict[str, list[str]] = {}
            for pid in pids:
                seen.add(pid)
                for k, v in self.labels_for_pid(pid).items():
                    if v not in merged.setdefault(k, []):
                        merged[k].append(v)
            if merged:
                out[gpu] = {k: ",".join(v)[:256] for k, v in merged.items()}
        for pid in [p for p in self._cache if p not in seen]:
            del self._cache[pid]  # the process is gone from every GPU
        return out
