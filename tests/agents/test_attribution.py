"""Which job each GPU process belongs to, from fixture /proc trees (Kubernetes, Slurm, Docker, bare)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from agents.attribution import AttributionConfig, Attributor, parse_cgroup

FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture
def attributor(tmp_path) -> Attributor:
    proc = tmp_path / "proc"
    shutil.copytree(FIXTURES / "proc", proc)
    return Attributor(AttributionConfig(proc_root=proc, pod_log_root=FIXTURES / "var_log_pods"))


def test_kubernetes_pod_from_cgroup_v2_and_kubelet_pod_dirs(attributor):
    assert attributor.labels_for_pid(1001) == {
        "pod_uid": "1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d", "container": "3f2a9c1b7d8e",
        "namespace": "ml-team", "pod": "llama-train-worker-0", "job": "llama-train-worker-0"}


def test_kubernetes_pod_from_cgroup_v1_and_downward_api_env(attributor):
    labels = attributor.labels_for_pid(1002)
    assert labels["pod"] == "resnet-sweep-17-abcde" and labels["namespace"] == "vision"
    assert labels["container"] == "9e8d7c6b5a49" and labels["job"] == "resnet-sweep-17"  # JOB_NAME wins


def test_slurm_jobs_under_cgroup_v2_and_v1(attributor):
    v2 = attributor.labels_for_pid(2001)
    assert v2["slurm_job"] == "4242" and v2["slurm_step"] == "0" and v2["job"] == "4242"
    assert v2["user"] == "alice" and v2["slurm_job_name"] == "gpt-pretrain"
    v1 = attributor.labels_for_pid(2002)
    assert v1 == {"slurm_job": "777", "slurm_step": "batch", "job": "777"}


def test_docker_container_with_job_env_and_a_bare_process(attributor):
    assert attributor.labels_for_pid(3001) == {"container": "0123456789ab", "job": "nightly-eval"}
    assert attributor.labels_for_pid(4001) == {}
    assert attributor.labels_for_pid(99999) == {}  # vanished process: no labels, no exception


def test_gpu_labels_merge_processes_and_forget_exited_ones(attributor):
    labels = attributor.gpu_labels({0: [1001], 1: [2001, 2002], 2: [4001]})
    assert labels[0]["job"] == "llama-train-worker-0"
    assert labels[1]["job"] == "4242,777" and labels[1]["slurm_job"] == "4242,777"
    assert 2 not in labels
    attributor.gpu_labels({0: [1001]})
    assert set(attributor._cache) == {1001}


def test_a_recycled_pid_is_looked_up_again(attributor, tmp_path):
    assert attributor.labels_for_pid(4001) == {}
    d = tmp_path / "proc" / "4001"
    (d / "cgroup").write_text("0::/system.slice/slurmstepd.scope/job_9/step_0/user/task_0\n")
    (d / "stat").write_text((d / "stat").read_text().replace(" 5006 ", " 7777 "))
    assert attributor.labels_for_pid(4001)["slurm_job"] == "9"


def test_cgroup_forms():
    assert parse_cgroup("0::/") == {}
    assert parse_cgroup("0::/system.slice/crio-" + "a" * 64 + ".scope") == {"container": "a" * 12}
    assert parse_cgroup("1:name=systemd:/docker/" + "b" * 64) == {"container": "b" * 12}
