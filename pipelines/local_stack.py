"""``gpuwatch up`` / ``down``: the broker, the pipeline and the notifier as one local stack.

``up`` starts each part in the background on free ports and writes where they
are to ``$GPUWATCH_HOME/run/stack.json``. Every later command on the same
``GPUWATCH_HOME`` finds them from there: the Kafka bootstrap through
:func:`recorded_bootstrap` (read by the settings), the pipeline through the
chDB owner file, the notifier through its ``api.json``. ``down`` stops what the
record names, and only that.

A second user on the same host (another ``GPUWATCH_HOME``) gets other free
ports, so nothing collides on fixed ports.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import orjson

from infra.kafka.broker import LocalKafka, _alive, free_port
from pipelines.devstack import spawn, wait_for

RECORD = Path("run") / "stack.json"
#: ``down`` gives everything this long to stop by itself before it kills what is left.
STOP_GRACE_S = 8.0


class StackError(RuntimeError):
    """A part of the stack could not start or be found; the text says which and where its log is."""


@dataclass
class Part:
    """One process of the stack: what it is, its pid, where it answers, where it logs."""

    name: str
    pid: int
    url: str
    log: str

    def alive(self) -> bool:
        return self.pid > 0 and _alive(self.pid)


@dataclass
class StackRecord:
    home: str
    kafka_bootstrap: str
    #: False when Kafka was given (GPUWATCH_KAFKA_BOOTSTRAP) and ``up`` did not start a broker.
    kafka_started: bool
    kafka_port: int = 0
    kafka_controller_port: int = 0
    parts: list[Part] = field(default_factory=list)
    started_at: float = 0.0
    app_id: str = "gpuwatch-pipeline"
    topic_prefix: str = ""

    @classmethod
    def path(cls, home: Path) -> Path:
        return Path(home).absolute() / RECORD

    @classmethod
    def load(cls, home: Path) -> "StackRecord | None":
        try:
            raw = orjson.loads(cls.path(home).read_bytes())
            raw["parts"] = [Part(**p) for p in raw.get("parts", [])]
            return cls(**raw)
        except (OSError, ValueError, TypeError):
            return None

    def save(self) -> None:
        p = self.path(Path(self.home))
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps(asdict(self), option=orjson.OPT_INDENT_2))
        tmp.replace(p)

    def part(self, name: str) -> Part | None:
        return next((p for p in self.parts if p.name == name), None)

    def broker(self) -> LocalKafka | None:
        if not self.kafka_started:
            return None
        return LocalKafka(Path(self.home) / "kafka", self.kafka_port, self.kafka_controller_port)

    def console_url(self) -> str:
        pipeline = self.part("pipeline")
        return f"{pipeline.url}/console/" if pipeline else ""

    def running(self) -> bool:
        """True while any part ``up`` started is still alive."""
        broker = self.broker()
        return any(p.alive() for p in self.parts) or (broker is not None and broker.pid() is not None)


def recorded_bootstrap(home: Path) -> str | None:
    """The bootstrap of a broker that ``gpuwatch up`` started for this home and that still runs."""
    rec = StackRecord.load(home)
    if rec is None or not rec.kafka_started:
        return None
    broker = rec.broker()
    return rec.kafka_bootstrap if broker is not None and broker.pid() is not None else None


def bootstrap_for(home: Path) -> str:
    """The settings' default Kafka bootstrap: the broker `gpuwatch up` runs for ``home``, else the usual one."""
    return recorded_bootstrap(Path(home)) or "127.0.0.1:9092"


def _port_free(port: int) -> bool:
    if not port:
        return False
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _reuse_or_free(port: int) -> int:
    """Keep last time's port (a restarted broker keeps its address) unless someone else took it."""
    return port if _port_free(port) else free_port()


@dataclass
class StackOptions:
    home: Path
    #: An existing Kafka to use instead of starting a broker.
    kafka_bootstrap: str | None = None
    webhooks: list[str] = field(default_factory=list)
    notify_config: str | None = None
    log_level: str = "warning"
    timeout_s: float = 180.0
    extra_env: dict[str, str] = field(default_factory=dict)


def start_stack(opts: StackOptions, progress=lambda text: None) -> StackRecord:
    """Start broker, pipeline and notifier; return once each is ready, with the record saved.

    ``progress(text)`` is told as each part becomes ready. On failure what was
    started is stopped again and :class:`StackError` says which part failed.
    """
    home = Path(opts.home).absolute()
    home.mkdir(parents=True, exist_ok=True)
    previous = StackRecord.load(home)
    logs = home / "logs"
    rec = StackRecord(home=str(home), kafka_bootstrap=opts.kafka_bootstrap or "", kafka_started=False,
                      started_at=time.time(),
                      app_id={**os.environ, **opts.extra_env}.get("GPUWATCH_APP_ID", "gpuwatch-pipeline"),
                      topic_prefix={**os.environ, **opts.extra_env}.get("GPUWATCH_TOPIC_PREFIX", ""))
    try:
        if not opts.kafka_bootstrap:
            rec.kafka_port = _reuse_or_free(previous.kafka_port if previous else 0)
            rec.kafka_controller_port = _reuse_or_free(previous.kafka_controller_port if previous else 0)
            rec.kafka_started = True
            rec.kafka_bootstrap = f"127.0.0.1:{rec.kafka_port}"
            rec.save()  # so a failed start can still be cleaned up by `down`
            broker = rec.broker()
            try:
                broker.start(timeout=opts.timeout_s)
            except Exception as e:  # BrokerError, or Maven/Java missing
                raise StackError(f"Kafka did not start: {e}") from None
            progress(f"Kafka {rec.kafka_bootstrap} (pid {broker.pid()}, log {broker.log_file})")
        env = {"GPUWATCH_HOME": str(home), "GPUWATCH_KAFKA_BOOTSTRAP": rec.kafka_bootstrap,
               "GPUWATCH_LOG_LEVEL": opts.log_level, **opts.extra_env}

        web_port = free_port()
        env["GPUWATCH_WEB_PORT"] = str(web_port)
        web_url = f"http://127.0.0.1:{web_port}"
        console = f"{web_url}/console/"
        env.setdefault("GPUWATCH_NOTIFY_EXTERNAL_URL", console)
        pipeline = spawn("pipeline", ["pipeline"], env, logs, detach=True)
        rec.parts.append(Part("pipeline", pipeline.popen.pid, web_url, str(pipeline.log_path)))
        rec.save()
        _wait_ready(pipeline, "pipeline: ready", opts.timeout_s)
        progress(f"pipeline {web_url} (pid {pipeline.popen.pid}, log {pipeline.log_path})")

        _start_notifier(rec, env, opts, progress)
    except BaseException:
        stop_stack(home)
        raise
    return rec


def _start_notifier(rec: StackRecord, env: dict[str, str], opts: StackOptions, progress) -> None:
    home = Path(rec.home)
    notify_port = free_port()
    env = {**env, "GPUWATCH_NOTIFY_LISTEN": f"127.0.0.1:{notify_port}"}
    args = ["notify"]
    if opts.notify_config:
        args += ["--config", opts.notify_config]
    elif opts.webhooks:
        for url in opts.webhooks:
            args += ["--webhook", url]
    else:
        args += ["--config", str(_log_only_config(home, rec.console_url()))]
    notify = spawn("notify", args, env, home / "logs", detach=True)
    rec.parts = [p for p in rec.parts if p.name != "notify"]
    rec.parts.append(Part("notify", notify.popen.pid, f"http://127.0.0.1:{notify_port}", str(notify.log_path)))
    rec.save()
    _wait_ready(notify, "notify: ready", opts.timeout_s)
    progress(f"notifier http://127.0.0.1:{notify_port} (pid {notify.popen.pid}, log {notify.log_path})")


def replace_notifier(home: Path, webhooks: list[str], timeout_s: float = 60.0) -> StackRecord:
    """Restart the stack's notifier with other receivers (the demo's webhook goes away with the demo)."""
    rec = StackRecord.load(home)
    if rec is None:
        raise StackError(f"no stack in {home}")
    old = rec.part("notify")
    if old is not None and old.alive():
        _signal(old.pid, signal.SIGTERM)
        try:
            wait_for(lambda: not old.alive(), STOP_GRACE_S, interval=0.1, what="the notifier to stop")
        except TimeoutError:
            _signal(old.pid, signal.SIGKILL)
    env = {"GPUWATCH_HOME": rec.home, "GPUWATCH_KAFKA_BOOTSTRAP": rec.kafka_bootstrap,
           "GPUWATCH_LOG_LEVEL": "warning", "GPUWATCH_TOPIC_PREFIX": rec.topic_prefix,
           "GPUWATCH_NOTIFY_EXTERNAL_URL": rec.console_url()}
    _start_notifier(rec, env, StackOptions(home=Path(rec.home), webhooks=webhooks, timeout_s=timeout_s),
                    lambda text: None)
    return rec


def point_home_at(home: Path, stack_home: Path) -> bool:
    """Record in ``home`` a stack that lives in ``stack_home``, so `gpuwatch down` there stops it.

    Refuses (False) when ``home`` already has a running stack of its own.
    """
    home, stack_home = Path(home).absolute(), Path(stack_home).absolute()
    if home == stack_home:
        return True
    existing = StackRecord.load(home)
    if existing is not None and existing.running():
        return False
    rec = StackRecord.load(stack_home)
    if rec is None:
        return False
    p = StackRecord.path(home)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(StackRecord.path(stack_home).read_bytes())
    return True


def _wait_ready(child, line: str, timeout: float) -> None:
    try:
        child.wait_for_line(line, timeout)
    except (RuntimeError, TimeoutError) as e:
        tail = "\n".join(child.output().strip().splitlines()[-15:])
        raise StackError(f"{child.name} did not become ready ({e.__class__.__name__}); "
                         f"last lines of {child.log_path}:\n{tail}") from None


def _log_only_config(home: Path, console_url: str) -> Path:
    """A notifier config for a stack without receivers: every alert to the notifier's log."""
    path = home / "run" / "notify.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "# Written by `gpuwatch up` (no --webhook or --notify-config given): every alert goes to the log.\n"
        f"global:\n  external_url: {orjson.dumps(console_url).decode()}\n"
        "route:\n  receiver: log\n  group_by: ['...']\n  group_wait: 0s\n  group_interval: 1s\n"
        "  repeat_interval: 4h\n"
        "receivers:\n  - name: log\n    log_configs: [{}]\n")
    return path


def stop_stack(home: Path, grace_s: float = STOP_GRACE_S) -> list[str]:
    """Stop every part the record names; returns what was stopped. Kills what outlives ``grace_s``."""
    rec = StackRecord.load(home)
    if rec is None:
        return []
    stopped: list[str] = []
    pids: dict[str, int] = {p.name: p.pid for p in rec.parts if p.alive()}
    broker = rec.broker()
    if broker is not None and broker.pid() is not None:
        pids["kafka"] = broker.pid()
    for name, pid in pids.items():
        # Each part runs in a session of its own: signal the group, so helpers it started go too.
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids.values()):
        time.sleep(0.1)
    for name, pid in pids.items():
        if _alive(pid):
            _signal(pid, signal.SIGKILL)
        stopped.append(name)
    try:
        wait_for(lambda: not any(_alive(pid) for pid in pids.values()), 1.5, interval=0.05, what="processes to exit")
    except TimeoutError:
        pass
    if broker is not None:
        broker.forget()
    StackRecord.path(home).unlink(missing_ok=True)
    StackRecord.path(Path(rec.home)).unlink(missing_ok=True)  # the stack's own, when `home` pointed at it
    return stopped


def _signal(pid: int, sig: int) -> None:
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
