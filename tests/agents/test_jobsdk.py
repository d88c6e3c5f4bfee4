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


def _send(port: int, *datagrams: bytes) -> None:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for d in datagrams:
        s.sendto(d, ("127.0.0.1", port))
    s.close()


def test_non_finite_numbers_never_become_samples(receiver):
    """Python's json.dumps writes NaN; the agent kept it as a gauge and the pipeline dead-lettered the node's
    whole batch (its GPU samples too) for two minutes."""
    _send(receiver.port, b'{"job":"j","g":{"loss":NaN,"step":7,"x":Infinity,"y":1e400}}')
    out = _wait_collect(receiver)
    values = {s["metric"]: s["value"] for s in out}
    assert values["job_step"] == 7.0 and "job_loss" not in values and "job_x" not in values and "job_y" not in values
    assert values["job_loss_nonfinite_total"] == 1.0
    for s in out:
        MetricSample.model_validate(s)


def test_a_bad_datagram_is_counted_and_harms_no_other_job(receiver):
    """A 400-digit count raised OverflowError on every later scrape; a deep nesting raised RecursionError."""
    _send(receiver.port, b'{"job":"good","g":{"step":1}}',
          b'{"job":"bad","lat":[1,' + b"9" * 400 + b',1]}', b'{"job":"bad2","err":' + b"9" * 400 + b"}",
          b"[" * 30000 + b"]" * 30000, b'{"job":"bad3","lat":[NaN,1,1]}')
    for _ in range(3):
        out = _wait_collect(receiver, want=5)
    assert {s["labels"]["job"] for s in out} == {"good"}
    assert receiver.stats()["malformed"] == 4


def test_one_job_cannot_flood_the_batch_with_gauges(receiver):
    keys = ",".join(f'"k{i}":{i}' for i in range(500))
    _send(receiver.port, ('{"job":"loud","g":{"loss":0.5,' + keys + "}}").encode())
    out = _wait_collect(receiver)
    extra = [s for s in out if s["metric"].startswith("job_k")]
    assert len(extra) == 32 and any(s["metric"] == "job_loss" for s in out)
    assert receiver.stats()["dropped_gauges"] == 468
