"""The job SDK (user side) and its receiver in the agent: reports arrive tagged with the job; the SDK never
blocks and never raises."""

from __future__ import annotations

import socket
import time

import pytest

from agents import jobsdk
from agents.collectors.base import NodeContext
from agents.collectors.jobsdk import JobSdkCollector, JobSdkConfig
from schemas.metrics import MetricSample


@pytest.fixture
def receiver():
    c = JobSdkCollector(JobSdkConfig(listen="127.0.0.1:0"), NodeContext(node="n1"))
    c.start()
    yield c
    c.close()


def _wait_collect(c: JobSdkCollector, want: int = 1, timeout: float = 2.0):
    deadline = time.monotonic() + timeout
    while True:
        out = c.collect(time.time())
        if c.stats()["datagrams"] >= want or time.monotonic() > deadline:
            return out
        time.sleep(0.01)


def test_training_and_inference_reports_become_job_samples(receiver):
    r = jobsdk.JobReporter(job="llama-70b-pretrain", address=f"127.0.0.1:{receiver.port}", flush_s=0)
    r.report(step=100, loss=2.5, grad_norm=1.1, learning_rate=3e-4, tokens_per_s=51234.0)
    for lat in (0.1, 0.3, 0.2):
        r.request(lat)
    r.request(1.0, error=True)
    r.error(2)
    r.flush()
    samples = _wait_collect(receiver, want=2)
    for s in samples:
        MetricSample.model_validate(s)
        assert s["gpu"] == -1 and s["labels"] == {"job": "llama-70b-pretrain"}
    v = {s["metric"]: s["value"] for s in samples}
    assert v["job_step"] == 100 and v["job_loss"] == 2.5 and v["job_grad_norm"] == 1.1
    assert v["job_learning_rate"] == 3e-4 and v["job_tokens_per_s"] == 51234.0
    assert v["job_request_latency_s"] == pytest.approx(0.4) and v["job_request_latency_max_s"] == 1.0
    assert v["job_requests_total"] == 4 and v["job_errors_total"] == 3
    again = {s["metric"]: s["value"] for s in receiver.collect(time.time())}
    assert "job_request_latency_s" not in again and again["job_errors_total"] == 3  # counters stay cumulative


def test_nan_loss_is_counted_not_sent_as_nan(receiver):
    r = jobsdk.JobReporter(job="diverging", address=f"127.0.0.1:{receiver.port}", flush_s=0)
    r.report(step=5, loss=float("nan"))
    samples = _wait_collect(receiver)
    v = {s["metric"]: s["value"] for s in samples}
    assert "job_loss" not in v and v["job_loss_nonfinite_total"] == 1 and v["job_step"] == 5


def test_timed_request_counts_an_exception_and_re_raises_it_unchanged(receiver):
    r = jobsdk.JobReporter(job="serve", address=f"127.0.0.1:{receiver.port}", flush_s=0)
    with pytest.raises(KeyError):
        with r.timed_request():
            raise KeyError("user bug")
    with r.timed_request():
        pass
    r.flush()
    v = {s["metric"]: s["value"] for s in _wait_collect(receiver)}
    assert v["job_requests_total"] == 2 and v["job_errors_total"] == 1


def test_the_sdk_never_raises_and_never_blocks():
    r = jobsdk.JobReporter(job="x", address="127.0.0.1:9", flush_s=0)  # nobody listening
    t0 = time.perf_counter()
    for i in range(2000):
        r.report(step=i, loss="not a number", weird=object(), tokens_per_s=float("inf"))
        r.request("slow")
        r.error("many")
    assert time.perf_counter() - t0 < 2.0
    r._sock.close()  # even a broken socket must not raise into the training loop
    r.report(step=1)
    r.flush()
    jobsdk.report(step=1, loss=0.5)
    jobsdk.request(0.1)
    jobsdk.error()


def test_malformed_datagrams_are_counted(receiver):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.sendto(b"not json", ("127.0.0.1", receiver.port))
    s.sendto(b'{"no_job": 1}', ("127.0.0.1", receiver.port))
    s.close()
    _wait_collect(receiver, want=2)
    assert receiver.stats()["malformed"] == 2


def test_listen_address_is_validated():
    with pytest.raises(ValueError, match="host:port"):
        JobSdkConfig(listen="9125")
