"""A local Apache Kafka 3.9 broker in KRaft mode, from Maven Central, on loopback.

This is how tests, the demo and developers get a *real* broker without Docker
or an Apache mirror: Maven resolves ``org.apache.kafka:kafka_2.13`` (see the
``pom.xml`` beside this file) into a cache, storage is formatted once, and the
broker runs as a detached JVM in combined broker+controller mode.

Start and stop are idempotent; ``start`` returns only when the broker answers.
It uses only the standard library, so it also runs as a plain script::

    python infra/kafka/broker.py start --port 9092 --data-dir var/kafka
    python infra/kafka/broker.py status
    python infra/kafka/broker.py stop
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

KAFKA_VERSION = "3.9.1"
POM = Path(__file__).with_name("pom.xml")
READY_LINE = "Kafka Server started"


class BrokerError(RuntimeError):
    """The broker could not be fetched, formatted, started or stopped; says why."""


def default_cache_dir() -> Path:
    base = os.environ.get("GPUWATCH_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "gpuwatch"
    )
    return Path(base) / f"kafka-{KAFKA_VERSION}"


def fetch_jars(cache_dir: Path | None = None, quiet: bool = True) -> Path:
    """Resolve the broker's jars with Maven once; later calls reuse the cache."""
    libs = (cache_dir or default_cache_dir()) / "libs"
    marker = libs / ".complete"
    if marker.exists():
        return libs
    mvn = shutil.which("mvn")
    if not mvn:
        raise BrokerError("Maven ('mvn') is not on PATH; it is needed once to fetch the Kafka jars")
    if not shutil.which("java"):
        raise BrokerError("Java ('java') is not on PATH; the Kafka broker needs Java 17")
    tmp = libs.with_name("libs.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    cmd = [mvn, "-B", "-f", str(POM), "dependency:copy-dependencies",
           f"-DoutputDirectory={tmp}", "-DincludeScope=runtime"]
    if quiet:
        cmd.insert(2, "-q")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0 or not any(tmp.glob(f"kafka_2.13-{KAFKA_VERSION}.jar")):
        tail = (proc.stdout + proc.stderr)[-2000:]
        raise BrokerError(f"Maven could not resolve Kafka {KAFKA_VERSION} (exit {proc.returncode}):\n{tail}")
    shutil.rmtree(libs, ignore_errors=True)
    tmp.rename(libs)
    marker.touch()
    return libs


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of ours is not alive
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return True


@dataclass
class LocalKafka:
    """One broker: its ports, its data directory and its JVM process."""

    data_dir: Path
    port: int = 9092
    controller_port: int = 9093
    cache_dir: Path | None = None
    heap: str = "512m"

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).absolute()

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def _pidfile(self) -> Path:
        return self.data_dir / "broker.pid"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "logs" / "server.log"

    @property
    def _portfile(self) -> Path:
        return self.data_dir / "broker.port"

    def _owner(self) -> tuple[int, int] | None:
        """(pid, client port) of the live broker this data directory belongs to; None when none runs.

        The pid file holds the pid alone (as older versions write and read it) and ``broker.port`` the
        port; a directory without a port file gives this object's port. A pid that is alive but not a
        Kafka broker started on this directory (the file outlived a crash or a reboot) is no owner: it
        is neither refused as a second broker nor signalled by :meth:`stop`.
        """
        try:
            pid = int(self._pidfile.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        if not _alive(pid) or not self._is_broker(pid):
            return None
        try:
            port = int(self._portfile.read_text().strip())
        except (OSError, ValueError):
            port = self.port
        return pid, port

    def _is_broker(self, pid: int) -> bool:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return True  # no /proc to ask (not Linux): trust the pid file, as before
        return b"kafka.Kafka" in cmdline and any(str(self.data_dir).encode() in arg for arg in cmdline)

    def pid(self) -> int | None:
        owner = self._owner()
        return owner[0] if owner else None

    def running(self) -> bool:
        """This broker (this data directory, this port) runs and takes connections."""
        owner = self._owner()
        return owner is not None and owner[1] == self.port and _port_open(self.port)

    def _write_config(self) -> Path:
        (self.data_dir / "logs").mkdir(parents=True, exist_ok=True)
        props = self.data_dir / "server.properties"
        props.write_text("\n".join([
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@127.0.0.1:{self.controller_port}",
            f"listeners=PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            f"log.dirs={self.data_dir / 'data'}",
            "num.partitions=3",
            "default.replication.factor=1",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=10",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "transaction.state.log.num.partitions=10",
            "share.coordinator.state.topic.replication.factor=1",
            "min.insync.replicas=1",
            "group.initial.rebalance.delay.ms=0",
            "auto.create.topics.enable=false",
            "log.retention.hours=24",
            "log.segment.bytes=67108864",
            "message.max.bytes=2097152",
            "",
        ]))
        log4j = self.data_dir / "log4j.properties"
        log4j.write_text("\n".join([
            "log4j.rootLogger=INFO, file",
            "log4j.appender.file=org.apache.log4j.RollingFileAppender",
            f"log4j.appender.file.File={self.log_file}",
            "log4j.appender.file.MaxFileSize=20MB",
            "log4j.appender.file.MaxBackupIndex=2",
            "log4j.appender.file.layout=org.apache.log4j.PatternLayout",
            "log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n",
            "log4j.logger.kafka=INFO",
            "log4j.logger.org.apache.kafka=INFO",
            "",
        ]))
        return props

    def _java(self, libs: Path, main: str, *args: str) -> list[str]:
        return [
            "java", f"-Xmx{self.heap}", f"-Xms{self.heap}", "-XX:+UseG1GC", "-XX:TieredStopAtLevel=1",
            "-Djava.awt.headless=true", f"-Dlog4j.configuration=file:{self.data_dir / 'log4j.properties'}",
            f"-Dkafka.logs.dir={self.data_dir / 'logs'}",
            "-cp", f"{libs}/*", main, *args,
        ]

    def _format(self, libs: Path, props: Path) -> None:
        if (self.data_dir / "data" / "meta.properties").exists():
            return
        cluster_id = (self.data_dir / "cluster.id")
        if not cluster_id.exists():
            out = subprocess.run(self._java(libs, "kafka.tools.StorageTool", "random-uuid"),
                                 capture_output=True, text=True)
            cid = out.stdout.strip().splitlines()[-1] if out.returncode == 0 and out.stdout.strip() else None
            cluster_id.write_text(cid or uuid.uuid4().hex[:22])
        proc = subprocess.run(
            self._java(libs, "kafka.tools.StorageTool", "format", "-t", cluster_id.read_text().strip(),
                       "-c", str(props), "--ignore-formatted"),
            capture_output=True, text=True,
        )
        if proc.returncode != 0:
            raise BrokerError(f"formatting Kafka storage failed: {(proc.stdout + proc.stderr)[-1500:]}")

    def start(self, timeout: float = 90.0) -> "LocalKafka":
        if self.running():
            return self
        owner = self._owner()
        if owner is not None:  # a second broker on one data directory corrupts the first one's log
            raise BrokerError(f"a Kafka broker already runs on {self.data_dir} (pid {owner[0]}, "
                              f"127.0.0.1:{owner[1]}); stop it first (gpuwatch down, or gpuwatch kafka stop) "
                              "or give this one another --data-dir")
        if self.pid() is None and _port_open(self.port):
            raise BrokerError(f"port {self.port} is already taken by another process; choose another with --port")
        libs = fetch_jars(self.cache_dir)
        props = self._write_config()
        self._format(libs, props)
        log_offset = self.log_file.stat().st_size if self.log_file.exists() else 0
        with open(self.data_dir / "logs" / "stdout.log", "ab") as out:
            proc = subprocess.Popen(self._java(libs, "kafka.Kafka", str(props)), stdout=out, stderr=out,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        self._pidfile.write_text(str(proc.pid))
        self._portfile.write_text(f"{self.port}\n")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise BrokerError(f"Kafka exited with code {proc.returncode} while starting; "
                                  f"see {self.log_file}:\n{self._log_tail()}")
            if _port_open(self.port) and self._log_since(log_offset).find(READY_LINE) >= 0:
                return self
            time.sleep(0.2)
        self.stop()
        raise BrokerError(f"Kafka did not become ready within {timeout:.0f}s; see {self.log_file}")

    def _log_since(self, offset: int) -> str:
        try:
            with open(self.log_file, "rb") as f:
                f.seek(offset)
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def _log_tail(self) -> str:
        text = self._log_since(0) + (self.data_dir / "logs" / "stdout.log").read_text(errors="replace")
        return text[-2000:]

    def forget(self) -> None:
        """Remove the record of a broker stopped by other means (``gpuwatch down`` signals its group)."""
        self._pidfile.unlink(missing_ok=True)
        self._portfile.unlink(missing_ok=True)

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop the broker; True if one was running. Escalates to SIGKILL after ``timeout``."""
        pid = self.pid()
        if pid is None:
            self.forget()
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
        self.forget()
        return True

    def status(self) -> dict:
        """The broker of this data directory, on whichever port it was started with."""
        owner = self._owner()
        port = owner[1] if owner else self.port
        return {"running": owner is not None and _port_open(port), "pid": owner[0] if owner else None,
                "bootstrap": f"127.0.0.1:{port}", "data_dir": str(self.data_dir), "version": KAFKA_VERSION}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="kafka", description="Local Apache Kafka (KRaft) on loopback.")
    p.add_argument("action", choices=["start", "stop", "status", "fetch"])
    p.add_argument("--port", type=int, default=int(os.environ.get("GPUWATCH_KAFKA_PORT", 9092)))
    p.add_argument("--controller-port", type=int, default=int(os.environ.get("GPUWATCH_KAFKA_CONTROLLER_PORT", 9093)))
    p.add_argument("--data-dir", default=os.environ.get("GPUWATCH_KAFKA_DATA_DIR", "var/kafka"))
    args = p.parse_args(argv)
    broker = LocalKafka(Path(args.data_dir), args.port, args.controller_port)
    try:
        if args.action == "fetch":
            print(fetch_jars(quiet=False))
        elif args.action == "start":
            broker.start()
            print(f"kafka running on {broker.bootstrap} (pid {broker.pid()})")
        elif args.action == "stop":
            print("kafka stopped" if broker.stop() else "kafka was not running")
        else:
            st = broker.status()
            print(f"kafka {'running' if st['running'] else 'stopped'} {st['bootstrap']} data={st['data_dir']}")
            return 0 if st["running"] else 3
    except BrokerError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
