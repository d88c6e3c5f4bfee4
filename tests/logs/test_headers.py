"""Line headers: each known format gives its message and its fields, and only the message is mined."""

from __future__ import annotations

import pytest

from pipelines.logs.headers import HeaderFormatError, HeaderParser

CASES = [
    # (format, raw line, message, level, component, host)
    ("hdfs", "081109 203615 148 INFO dfs.DataNode$PacketResponder: PacketResponder 1 for block blk_38865 terminating",
     "PacketResponder 1 for block blk_38865 terminating", "info", "dfs.DataNode$PacketResponder", ""),
    ("java", "2015-10-18 18:01:47,978 INFO [main] org.apache.hadoop.mapreduce.v2.app.MRAppMaster: Created MRAppMaster",
     "Created MRAppMaster", "info", "org.apache.hadoop.mapreduce.v2.app.MRAppMaster", ""),
    ("java", "2015-10-18 18:01:51,775 INFO [Socket Reader #1 for port 62260] org.apache.hadoop.ipc.Server: Starting",
     "Starting", "info", "org.apache.hadoop.ipc.Server", ""),
    ("spark", "17/06/09 20:10:40 INFO executor.CoarseGrainedExecutorBackend: Registered signal handlers for [TERM]",
     "Registered signal handlers for [TERM]", "info", "executor.CoarseGrainedExecutorBackend", ""),
    ("zookeeper", "2015-07-29 17:41:44,747 - INFO  [QuorumPeer[myid=1]/0:0:0:0:0:0:0:0:2181:FastLeaderElection@774] - "
     "Notification time out: 3200", "Notification time out: 3200", "info",
     "QuorumPeer[myid=1]/0:0:0:0:0:0:0:0:2181:FastLeaderElection@774", ""),
    ("bgl", "- 1117838570 2005.06.03 R02-M1-N0-C:J12-U11 2005-06-03-15.42.50.675872 R02-M1-N0-C:J12-U11 RAS KERNEL "
     "INFO instruction cache parity error corrected", "instruction cache parity error corrected", "info", "KERNEL",
     "R02-M1-N0-C:J12-U11"),
    ("hpc", "134681 node-246 unix.hw state_change.unavailable 1077804742 1 Component State Change: Component alt0",
     "Component State Change: Component alt0", "", "unix.hw", "node-246"),
    ("thunderbird", "- 1131566461 2005.11.09 dn228 Nov 9 12:01:01 dn228/dn228 crond(pam_unix)[2915]: session closed "
     "for user root", "session closed for user root", "", "crond(pam_unix)", "dn228"),
    ("thunderbird", "- 1131566461 2005.11.09 tbird-admin1 Nov 9 12:01:01 local@tbird-admin1 "
     "/apps/x86_64/system/ganglia-3.0.1/sbin/gmetad[1682]: data_thread() got not answer",
     "data_thread() got not answer", "", "/apps/x86_64/system/ganglia-3.0.1/sbin/gmetad", "tbird-admin1"),
    ("windows", "2016-09-28 04:30:30, Info                  CBS    Loaded Servicing Stack v6.1.7601.23505",
     "Loaded Servicing Stack v6.1.7601.23505", "info", "CBS", ""),
    ("syslog", "Jun 14 15:16:01 combo sshd(pam_unix)[19939]: check pass; user unknown",
     "check pass; user unknown", "", "sshd(pam_unix)", "combo"),
    ("syslog", "Jun 15 04:06:20 combo logrotate: ALERT exited abnormally with [1]",
     "ALERT exited abnormally with [1]", "", "logrotate", "combo"),
    ("syslog", "Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user webmaster from 173.234.31.186",
     "Invalid user webmaster from 173.234.31.186", "", "sshd", "LabSZ"),
    ("syslog", "Jul  1 09:02:26 calvisitor-10-105-160-95 QQ[10018] (0x7fd3c6d14c20): FA||Url||taskID dealloc",
     "FA||Url||taskID dealloc", "", "QQ", "calvisitor-10-105-160-95"),
    ("syslog", "Jul  1 09:01:05 calvisitor-10-105-160-95 com.apple.CDScheduler[43]: Thermal pressure state: 1",
     "Thermal pressure state: 1", "", "com.apple.CDScheduler", "calvisitor-10-105-160-95"),
    ("syslog", "2025-11-30T12:00:01.123456+00:00 gpu-node-007 kernel: [ 1234.567890] NVRM: Xid (PCI:0000:3b:00): 79",
     "NVRM: Xid (PCI:0000:3b:00): 79", "", "kernel", "gpu-node-007"),
    ("rfc5424", "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - BOM'su root' failed",
     "BOM'su root' failed", "", "su", "mymachine.example.com"),
    ("logcat", "03-17 16:13:38.811  1702  2395 D WindowManager: printFreezingDisplayLogsopening app wtoken",
     "printFreezingDisplayLogsopening app wtoken", "debug", "WindowManager", ""),
    ("pipes", "20171223-22:15:29:606|Step_LSC|30002312|onStandStepChanged 3579", "onStandStepChanged 3579", "",
     "Step_LSC", ""),
    ("apache", "[Sun Dec 04 04:47:44 2005] [notice] workerEnv.init() ok /etc/httpd/conf/workers2.properties",
     "workerEnv.init() ok /etc/httpd/conf/workers2.properties", "notice", "", ""),
    ("apache", "[Sat Jun 11 03:03:03 2005] [error] [client 1.2.3.4] Directory index forbidden by rule: /var/www/",
     "Directory index forbidden by rule: /var/www/", "error", "", "1.2.3.4"),
    ("proxifier", "[10.30 16:49:06] chrome.exe - proxy.cse.cuhk.edu.hk:5070 open through proxy proxy.cse.cuhk.edu.hk:5070 "
     "HTTPS", "proxy.cse.cuhk.edu.hk:5070 open through proxy proxy.cse.cuhk.edu.hk:5070 HTTPS", "", "chrome.exe", ""),
    ("oslo", "nova-api.log.1.2017-05-16_13:53:08 2017-05-16 00:00:00.008 25746 INFO nova.osapi_compute.wsgi.server "
     "[req-38101a0b-2096 113d3a99c3da401fbd62cc2caa5b96d2 54fadb412c4e40cdbaed9335e4c35a9e - - -] 10.11.10.1 \"GET "
     "/v2/servers/detail HTTP/1.1\" status: 200", "10.11.10.1 \"GET /v2/servers/detail HTTP/1.1\" status: 200", "info",
     "nova.osapi_compute.wsgi.server", ""),
    ("nccl", "gpu-node-3:12345:12400 [0] NCCL INFO Channel 00/0 : 0[0] -> 1[1] via P2P/IPC/read",
     "Channel 00/0 : 0[0] -> 1[1] via P2P/IPC/read", "info", "", "gpu-node-3"),
    ("nccl", "gpu-node-3:12345:12400 [7] transport/net_ib.cc:1295 NCCL WARN NET/IB : Got completion with error 12",
     "NET/IB : Got completion with error 12", "warning", "transport/net_ib.cc:1295", "gpu-node-3"),
    ("c10d", "[rank3]:[E ProcessGroupNCCL.cpp:475] [Rank 3] Watchdog caught collective operation timeout",
     "[Rank 3] Watchdog caught collective operation timeout", "error", "ProcessGroupNCCL.cpp:475", ""),
    ("c10d", "[W1215 10:00:00.123456000 socket.cpp:464] [c10d] The server socket has failed to bind",
     "[c10d] The server socket has failed to bind", "warning", "socket.cpp:464", ""),
    ("torchelastic", "[2024-01-01 12:00:00,123] torch.distributed.elastic.multiprocessing.api: [WARNING] Sending "
     "process 1234 closing signal SIGTERM", "Sending process 1234 closing signal SIGTERM", "warning",
     "torch.distributed.elastic.multiprocessing.api", ""),
    ("glog", "W1215 10:00:00.123456 140 torch/distributed/run.py:793] Setting OMP_NUM_THREADS",
     "Setting OMP_NUM_THREADS", "warning", "torch/distributed/run.py:793", ""),
    ("slurm", "[2025-11-30T12:00:00.123] [123456.0] done with job", "done with job", "", "123456.0", ""),
    ("slurm", "[2025-11-30T12:00:00.123] error: Nodes gpu-node-[001-004] not responding",
     "Nodes gpu-node-[001-004] not responding", "error", "", ""),
    ("dmesg", "[ 1234.567890] NVRM: Xid (PCI:0000:3b:00): 79, pid=1234, GPU has fallen off the bus.",
     "NVRM: Xid (PCI:0000:3b:00): 79, pid=1234, GPU has fallen off the bus.", "", "", ""),
    ("kmsg", "3,1234,567890123,-;NVRM: Xid (PCI:0000:3b:00): 48, An uncorrectable double bit error",
     "NVRM: Xid (PCI:0000:3b:00): 48, An uncorrectable double bit error", "error", "", ""),
    ("python", "2025-01-01 12:00:00,001 - trainer.loop - WARNING - slow step", "slow step", "warning", "trainer.loop", ""),
    ("pylevel", "INFO:torch.distributed.launcher.api:Starting elastic_operator", "Starting elastic_operator", "info",
     "torch.distributed.launcher.api", ""),
    ("access", "10.0.0.1 - alice [30/Nov/2025:12:00:00 +0000] \"GET /metrics HTTP/1.1\" 200 512 \"-\" \"curl\"",
     "\"GET /metrics HTTP/1.1\" 200 512 \"-\" \"curl\"", "", "", "10.0.0.1"),
    ("json", '{"__REALTIME_TIMESTAMP": "1700000000000000", "_HOSTNAME": "n1", "SYSLOG_IDENTIFIER": "sshd", '
     '"PRIORITY": "3", "MESSAGE": "Connection closed"}', "Connection closed", "error", "sshd", "n1"),
    ("java", "2025-11-30T12:00:00Z WARN disk almost full", "disk almost full", "warning", "", ""),
    ("level", "ERROR: something broke", "something broke", "error", "", ""),
]


@pytest.mark.parametrize("fmt, line, msg, level, component, host", CASES, ids=[f"{c[0]}-{i}" for i, c in
                                                                                enumerate(CASES)])
def test_each_format_gives_its_message_and_fields(fmt, line, msg, level, component, host):
    h = HeaderParser().parse(line, source=f"/var/log/{fmt}.log")
    assert (h.fmt, h.msg, h.level, h.component, h.host) == (fmt, msg, level, component, host)


def test_a_cri_line_is_parsed_twice():
    h = HeaderParser().parse("2025-11-30T12:00:00.123456789Z stderr F 2025-11-30 12:00:00,001 ERROR [main] "
                             "com.example.App: boom")
    assert (h.fmt, h.msg, h.level, h.component) == ("cri+java", "boom", "error", "com.example.App")


def test_a_line_without_a_header_is_all_message():
    assert HeaderParser().parse("step 10 | loss 2.31").msg == "step 10 | loss 2.31"


def test_a_multi_line_record_keeps_its_continuation():
    h = HeaderParser().parse("2025-01-01 12:00:00,001 - t - ERROR - failed\nTraceback (most recent call last):\n  x")
    assert h.msg == "failed\nTraceback (most recent call last):\n  x" and h.level == "error"


def test_a_source_of_its_own_format_overrides_the_built_ins():
    p = HeaderParser(overrides={"/var/log/app.log": r"(?P<ts>\d+)\|(?P<level>\w+)\|(?P<msg>.*)"})
    h = p.parse("1700000000|WARN|disk full", source="/var/log/app.log")
    assert (h.fmt, h.level, h.msg) == ("custom", "warning", "disk full")
    assert p.parse("1700000000|WARN|disk full", source="/var/log/other.log").msg == "1700000000|WARN|disk full"


def test_a_format_without_a_message_group_is_refused():
    with pytest.raises(HeaderFormatError, match="msg"):
        HeaderParser(default=r"(?P<ts>\S+) .*")


def test_a_journal_export_entry_is_one_record_with_its_fields():
    from agents.logrecords import join_records

    lines = ["__CURSOR=s=abc;i=1", "__REALTIME_TIMESTAMP=1700000000000000", "PRIORITY=3", "_HOSTNAME=gpu-node-7",
             "SYSLOG_IDENTIFIER=nvidia-persistenced", "MESSAGE=Failed to query NVIDIA devices", "",
             "__CURSOR=s=abc;i=2", "PRIORITY=6", "MESSAGE=Started Session 5 of user root.", ""]
    records = [text for _, text in join_records(lines)]
    assert len(records) == 2
    h = HeaderParser().parse(records[0])
    assert (h.fmt, h.msg, h.level, h.component, h.host) == (
        "journal-export", "Failed to query NVIDIA devices", "error", "nvidia-persistenced", "gpu-node-7")


@pytest.mark.parametrize("line, component, msg", [
    ("Jul  1 09:29:02 calvisitor-10-105-160-95 sandboxd[129] ([31211]): com.apple.Addres(31211) deny network-outbound",
     "sandboxd", "com.apple.Addres(31211) deny network-outbound"),
    ("Jul  1 10:13:39 calvisitor-10-105-160-95 secd[276]:  SOSAccountThisDeviceCanSyncWithCircle sync failure",
     "secd", "SOSAccountThisDeviceCanSyncWithCircle sync failure"),
    ("nova-compute.log.1.2017-05-16_13:55:31 2017-05-16 00:00:10.302 2931 INFO nova.virt.libvirt.driver [-] "
     "[instance: b9000564-fe1a-409b-b8cc-1e88b294cd1d] Instance spawned successfully.", "nova.virt.libvirt.driver",
     "Instance spawned successfully."),
])
def test_real_loghub_lines_with_unusual_headers(line, component, msg):
    h = HeaderParser().parse(line)
    assert (h.component, h.msg) == (component, msg)
