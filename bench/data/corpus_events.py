"""The event tables behind bench/data/corpus.tsv: per format, each event's message template.

``{kind}`` is a variable (see ``make_corpus.val``); options (``tag``, ``lvl``...) feed the header.
Events built from two lists (``verbs x objects``) are distinct events, as a
unit's "Started" and "Stopped" lines are.
"""

from __future__ import annotations

EVENTS: dict[str, list[dict]] = {}


def fmt(name: str, *events, **common) -> None:
    out = EVENTS.setdefault(name, [])
    for ev in events:
        if isinstance(ev, str):
            ev = {"t": ev}
        # "same": another event's id, for a line the labels count as that event (Loghub's convention:
        # numbers are variables, so a status code alone does not make an event)
        out.append({**common, **ev, "id": ev.get("same") or f"E{len(out) + 1}"})


def cross(verbs: list[str], objects: list[str], **opts) -> list[dict]:
    return [{"t": f"{v} {o}", **opts} for v in verbs for o in objects]


# --- syslog (systemd and friends) ------------------------------------------------------------------
UNITS = ["Daily apt download activities.", "Cleanup of Temporary Directories.", "NVIDIA Persistence Daemon.",
         "Slurm node daemon.", "Munge authentication service.", "Docker Application Container Engine.",
         "Network Time Synchronization.", "OpenBSD Secure Shell server.", "Prometheus node exporter.",
         "Rotate log files.", "Load Kernel Modules.", "NVIDIA fabric manager service."]
fmt("syslog", *cross(["Started", "Stopped", "Starting", "Stopping"], UNITS, tag="systemd"),
    {"t": "Started Session {int} of user {user}.", "tag": "systemd"},
    {"t": "New session {int} of user {user}.", "tag": "systemd-logind"},
    {"t": "Removed session {int}.", "tag": "systemd-logind"},
    {"t": "{user} : TTY=pts/{int} ; PWD=/home/{user} ; USER=root ; COMMAND=/usr/bin/nvidia-smi", "tag": "sudo"},
    {"t": "pam_unix(sudo:session): session opened for user root by {user}(uid={int})", "tag": "sudo"},
    {"t": "pam_unix(sudo:session): session closed for user root", "tag": "sudo"},
    {"t": "(root) CMD (run-parts /etc/cron.hourly)", "tag": "CRON"},
    {"t": "DHCPREQUEST for {ip} on eth0 to {ip} port 67", "tag": "dhclient"},
    {"t": "DHCPACK of {ip} from {ip}", "tag": "dhclient"},
    {"t": "bound to {ip} -- renewal in {int} seconds.", "tag": "dhclient"},
    {"t": "Received SIGHUP; restarting.", "tag": "rsyslogd"},
    {"t": "{path}: Succeeded.", "tag": "systemd"},
    {"t": "nvidia-persistenced.service: Main process exited, code=exited, status={int}/FAILURE", "tag": "systemd"},
    {"t": "slurmd.service: Failed with result 'exit-code'.", "tag": "systemd"},
    {"t": "Out of memory: Killed process {pid} (python) total-vm:{int}kB, anon-rss:{int}kB", "tag": "kernel"},
    {"t": "Accepted publickey for {user} from {ip} port {port} ssh2: RSA SHA256:{hexid}", "tag": "sshd"},
    {"t": "Timed out waiting for device /dev/disk/by-uuid/{uuid}.", "tag": "systemd"},
    {"t": "Mounted /scratch from {fqdn}:/export/scratch.", "tag": "systemd"},
    {"t": "Synchronized to time server {ipport} (ntp.ubuntu.com).", "tag": "systemd-timesyncd"})

# --- kernel via syslog and dmesg ------------------------------------------------------------------------
KERNEL = [
    "NVRM: Xid (PCI:{pci}): 79, pid={pid}, GPU has fallen off the bus.",
    "NVRM: Xid (PCI:{pci}): 48, pid={pid}, name=python, An uncorrectable double bit error (DBE) has been detected on GPU in the framebuffer at physAddr 0x{hexid}.",
    "NVRM: Xid (PCI:{pci}): 31, pid={pid}, name=python, Ch 00000010, intr 00000000. MMU Fault: ENGINE GRAPHICS GPCCLIENT_T1_0 faulted @ 0x7f_{hexid}.",
    "NVRM: Xid (PCI:{pci}): 13, pid={pid}, name=python, Graphics Exception: ESR 0x{hexid}=0x{hexid}",
    "NVRM: GPU at PCI:{pci}: GPU-{uuid}",
    "NVRM: GPU Board Serial Number: {int}",
    "NVRM: loading NVIDIA UNIX x86_64 Kernel Module  535.{int}  Thu Oct 10 01:03:44 UTC 2024",
    "mlx5_core {pci}: mlx5_cmd_check:{int}:(pid {pid}): CREATE_MKEY(0x200) op_mod(0x0) failed, status bad resource state(0x9), syndrome (0x{hexid})",
    "mlx5_core {pci} ib{int}: Link down",
    "mlx5_core {pci} ib{int}: Link up",
    "mlx5_core {pci}: Port module event: module {int}, Cable plugged",
    "nvme nvme{int}: I/O {int} QID {int} timeout, aborting",
    "nvme nvme{int}: Abort status: 0x0",
    "EXT4-fs ({word}{int}): mounted filesystem with ordered data mode. Opts: (null)",
    "EXT4-fs error (device nvme{int}n1p1): ext4_find_entry:{int}: inode #{int}: comm python: reading directory lblock 0",
    "python[{pid}]: segfault at {hex} ip {hex} sp {hex} error 4 in libcuda.so.535.{int}[{hex}+{hex}]",
    "INFO: task python:{pid} blocked for more than 120 seconds.",
    "\"echo 0 > /proc/sys/kernel/hung_task_timeout_secs\" disables this message.",
    "oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0-1,oom_memcg=/slurm/uid_{int}/job_{job},task_memcg=/slurm/uid_{int}/job_{job}/step_0,task=python,pid={pid},uid={int}",
    "Memory cgroup out of memory: Killed process {pid} (python) total-vm:{int}kB, anon-rss:{int}kB, file-rss:{int}kB, shmem-rss:{int}kB, UID:{int} pgtables:{int}kB oom_score_adj:0",
    "perf: interrupt took too long ({int} > {int}), lowering kernel.perf_event_max_sample_rate to {int}",
    "pcieport {pci}: AER: Corrected error received: {pci}",
    "pcieport {pci}: AER: PCIe Bus Error: severity=Corrected, type=Physical Layer, (Receiver ID)",
    "pcieport {pci}:   device [10de:22a3] error status/mask=00000001/0000e000",
    "igb {pci} eno{int}: igb: eno{int} NIC Link is Up 1000 Mbps Full Duplex, Flow Control: RX/TX",
    "igb {pci} eno{int}: igb: eno{int} NIC Link is Down",
    "IPv6: ADDRCONF(NETDEV_CHANGE): eno{int}: link becomes ready",
    "audit: type=1400 audit({int}.{int}:{int}): apparmor=\"DENIED\" operation=\"open\" profile=\"snap.docker\" name=\"{path}\" pid={pid} comm=\"dockerd\"",
    "nfs: server {fqdn} not responding, still trying",
    "nfs: server {fqdn} OK",
    "Lustre: {int}:0:(client.c:{int}:ptlrpc_expire_one_request()) @@@ Request sent has timed out for slow reply",
    "LustreError: {int}:0:(ldlm_request.c:{int}:ldlm_cli_cancel_req()) Got rc -108 from cancel RPC: canceling anyway",
    "usb {int}-{int}: new high-speed USB device number {int} using xhci_hcd",
    "xfs filesystem being remounted at /scratch supports timestamps until 2038 (0x7fffffff)",
    "Buffer I/O error on dev nvme{int}n1, logical block {int}, async page read",
    "watchdog: BUG: soft lockup - CPU#{int} stuck for {int}s! [python:{pid}]",
    "rcu: INFO: rcu_sched self-detected stall on CPU",
    "EDAC MC{int}: 1 CE memory read error on CPU_SrcID#{int}_MC#{int}_Chan#{int}_DIMM#{int} (channel:{int} slot:{int} page:0x{hexid} offset:0x0 grain:32 syndrome:0x0)",
]
fmt("kernel", *KERNEL)
fmt("dmesg", *KERNEL[:20], *[
    "nvidia-nvlink: Nvlink Core is being initialized, major device number {int}",
    "nvidia-modeset: Loading NVIDIA Kernel Mode Setting Driver for UNIX platforms  535.{int}",
    "ACPI: Added _OSI(Module Device)", "Freeing unused kernel image (initmem) memory: {int}K",
    "Run /init as init process", "random: crng init done",
    "systemd[1]: Detected architecture x86-64.", "infiniband mlx5_{int}: mlx5_ib_add: mlx5_ib: Mellanox Connect-IB Infiniband driver v5.{int}",
])

# --- OpenSSH (Loghub-like) ----------------------------------------------------------------------------
fmt("openssh",
    "reverse mapping checking getaddrinfo for {fqdn} [{ip}] failed - POSSIBLE BREAK-IN ATTEMPT!",
    "Invalid user {word} from {ip}", "input_userauth_request: invalid user {word} [preauth]",
    "pam_unix(sshd:auth): check pass; user unknown",
    "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost={ip}",
    "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost={ip}  user=root",
    "Failed password for invalid user {word} from {ip} port {port} ssh2",
    "Failed password for root from {ip} port {port} ssh2",
    "Failed none for invalid user {word} from {ip} port {port} ssh2",
    "Received disconnect from {ip}: 11: Bye Bye [preauth]",
    "Connection closed by {ip} [preauth]",
    "PAM 2 more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= rhost={ip}  user=root",
    "message repeated {int} times: [ Failed password for root from {ip} port {port} ssh2]",
    "Disconnecting: Too many authentication failures for root [preauth]",
    "error: Received disconnect from {ip}: 3: com.jcraft.jsch.JSchException: Auth fail [preauth]",
    "Did not receive identification string from {ip}",
    "Accepted password for {user} from {ip} port {port} ssh2",
    "pam_unix(sshd:session): session opened for user {user} by (uid=0)",
    "pam_unix(sshd:session): session closed for user {user}",
    "Address {ip} maps to {fqdn}, but this does not map back to the address - POSSIBLE BREAK-IN ATTEMPT!",
    "Bad protocol version identification 'GET / HTTP/1.1' from {ip} port {port}",
    "fatal: Read from socket failed: Connection reset by peer [preauth]",
    "Received disconnect from {ip} port {port}:11: disconnected by user",
    "Disconnected from user {user} {ip} port {port}")

# --- HDFS -----------------------------------------------------------------------------------------------
fmt("hdfs",
    {"t": "PacketResponder {int} for block {blk} terminating", "tag": "dfs.DataNode$PacketResponder"},
    {"t": "Received block {blk} of size {bytes} from /{ip}", "tag": "dfs.DataNode$PacketResponder"},
    {"t": "Receiving block {blk} src: /{ipport} dest: /{ipport}", "tag": "dfs.DataNode$DataXceiver"},
    {"t": "BLOCK* NameSystem.addStoredBlock: blockMap updated: {ipport} is added to {blk} size {bytes}", "tag": "dfs.FSNamesystem"},
    {"t": "BLOCK* NameSystem.allocateBlock: /user/root/rand/_temporary/_task_{job}_0001_m_{int}_0/part-{int}. {blk}", "tag": "dfs.FSNamesystem"},
    {"t": "Verification succeeded for {blk}", "tag": "dfs.DataBlockScanner"},
    {"t": "Deleting block {blk} file /mnt/hadoop/dfs/data/current/subdir{int}/{blk}", "tag": "dfs.FSDataset"},
    {"t": "{ipport} Served block {blk} to /{ip}", "tag": "dfs.DataNode$DataXceiver"},
    {"t": "{ipport}:Got exception while serving {blk} to /{ip}:", "tag": "dfs.DataNode$DataXceiver", "lvl": "WARN"},
    {"t": "BLOCK* NameSystem.delete: {blk} is added to invalidSet of {ipport}", "tag": "dfs.FSNamesystem"},
    {"t": "BLOCK* ask {ipport} to delete {blk}", "tag": "dfs.FSNamesystem"},
    {"t": "{ipport}:Transmitted block {blk} to /{ipport}", "tag": "dfs.DataNode"},
    {"t": "{ipport} Starting thread to transfer block {blk} to {ipport}", "tag": "dfs.DataNode"},
    {"t": "Receiving empty packet for block {blk}", "tag": "dfs.DataNode$PacketResponder"},
    {"t": "Exception in receiveBlock for block {blk} java.io.IOException: Connection reset by peer", "tag": "dfs.DataNode$DataXceiver"},
    {"t": "writeBlock {blk} received exception java.io.IOException: Could not read from stream", "tag": "dfs.DataNode$DataXceiver", "lvl": "WARN"},
    {"t": "BLOCK* NameSystem.addStoredBlock: Redundant addStoredBlock request received for {blk} on {ipport} size {bytes}", "tag": "dfs.FSNamesystem"},
    {"t": "Changing block file offset of block {blk} from {int} to {int} meta file offset to {int}", "tag": "dfs.DataNode$BlockReceiver"})

# --- Hadoop / YARN (log4j) ----------------------------------------------------------------------------------
fmt("log4j",
    "Created MRAppMaster for application appattempt_{job}_{int}_{int}", "Executing with tokens:",
    "Using mapred newApiCommitter.", "OutputCommitter set in config null",
    "Registering class org.apache.hadoop.mapreduce.v2.app.job.event.{word}EventType for class org.apache.hadoop.mapreduce.v2.app.MRAppMaster${word}Dispatcher",
    "Default file system [hdfs://{host}:9000]", "Emitting job history data to the timeline server is not enabled",
    "Scheduled snapshot period at {int} second(s).", "MRAppMaster metrics system started",
    "Adding job token for job_{job}_{int} to jobTokenSecretManager",
    "Input size for job job_{job}_{int} = {int}. Number of splits = {int}",
    "job_{job}_{int}Job Transitioned from NEW to INITED", "job_{job}_{int}Job Transitioned from INITED to SETUP",
    "job_{job}_{int}Job Transitioned from SETUP to RUNNING",
    "task_{job}_{int}_m_{int} Task Transitioned from NEW to SCHEDULED",
    "task_{job}_{int}_m_{int} Task Transitioned from SCHEDULED to RUNNING",
    "attempt_{job}_{int}_m_{int}_{int} TaskAttempt Transitioned from NEW to UNASSIGNED",
    "attempt_{job}_{int}_m_{int}_{int} TaskAttempt Transitioned from UNASSIGNED to ASSIGNED",
    "Starting Socket Reader #{int} for port {port}", "IPC Server Responder: starting",
    "IPC Server listener on {port}: starting", "Connecting to ResourceManager at {host}/{ipport}",
    "maxContainerCapability: <memory:{int}, vCores:{int}>", "queue: default",
    "Resolved {fqdn} to /default-rack", "Progress of TaskAttempt attempt_{job}_{int}_m_{int}_{int} is : {float}",
    "After Scheduling: PendingReds:{int} ScheduledMaps:{int} ScheduledReds:{int} AssignedMaps:{int} AssignedReds:{int} CompletedMaps:{int} CompletedReds:{int} ContainersAllocated:{int} ContainersCompleted:{int} HostLocal:{int} RackLocal:{int}",
    "Before Scheduling: PendingReds:{int} ScheduledMaps:{int} ScheduledReds:{int} AssignedMaps:{int} AssignedReds:{int} CompletedMaps:{int} CompletedReds:{int} ContainersAllocated:{int} ContainersCompleted:{int} HostLocal:{int} RackLocal:{int}",
    {"t": "ERROR IN CONTACTING RM.", "lvl": "ERROR"},
    {"t": "Address change detected. Old: {host}/{ipport} New: {host}:{port}", "lvl": "WARN"},
    {"t": "Retrying connect to server: {host}:{port}. Already tried {int} time(s); maxRetries={int}", "lvl": "INFO"},
    {"t": "Diagnostics report from attempt_{job}_{int}_m_{int}_{int}: Container killed by the ApplicationMaster.", "lvl": "INFO"},
    {"t": "Slow ReadProcessor read fields took {int}ms (threshold=30000ms); ack: seqno: {int} status: SUCCESS status: ERROR downstreamAckTimeNanos: 0, targets: [{ipport}, {ipport}]", "lvl": "WARN"},
    "Num completed Tasks: {int}", "Reduce slow start threshold not met. completedMapsForReduceSlowstart {int}",
    "Recalculating schedule, headroom=<memory:{int}, vCores:{int}>",
    "Assigned container container_{job}_{int}_01_{int} to attempt_{job}_{int}_m_{int}_{int}")

# --- Spark ---------------------------------------------------------------------------------------------------
fmt("spark",
    {"t": "Registered signal handlers for [TERM, HUP, INT]", "tag": "executor.CoarseGrainedExecutorBackend"},
    {"t": "Changing view acls to: yarn,{user}", "tag": "spark.SecurityManager"},
    {"t": "Changing modify acls to: yarn,{user}", "tag": "spark.SecurityManager"},
    {"t": "Slf4jLogger started", "tag": "slf4j.Slf4jLogger"}, {"t": "Starting remoting", "tag": "Remoting"},
    {"t": "Remoting started; listening on addresses :[akka.tcp://sparkExecutorActorSystem@{host}:{port}]", "tag": "Remoting"},
    {"t": "Successfully started service 'sparkExecutorActorSystem' on port {port}.", "tag": "util.Utils"},
    {"t": "Created local directory at /opt/hdfs/nodemanager/usercache/{user}/appcache/application_{job}_{int}/blockmgr-{uuid}", "tag": "storage.DiskBlockManager"},
    {"t": "MemoryStore started with capacity {size}", "tag": "storage.MemoryStore"},
    {"t": "Connecting to driver: spark://CoarseGrainedScheduler@{ipport}", "tag": "executor.CoarseGrainedExecutorBackend"},
    {"t": "Starting executor ID {int} on host {host}", "tag": "executor.Executor"},
    {"t": "Got assigned task {int}", "tag": "executor.CoarseGrainedExecutorBackend"},
    {"t": "Running task {int}.0 in stage {int}.0 (TID {int})"},
    {"t": "Finished task {int}.0 in stage {int}.0 (TID {int}). {int} bytes result sent to driver"},
    {"t": "Started reading broadcast variable {int}", "tag": "broadcast.TorrentBroadcast"},
    {"t": "Reading broadcast variable {int} took {dur}", "tag": "broadcast.TorrentBroadcast"},
    {"t": "Block broadcast_{int}_piece0 stored as bytes in memory (estimated size {size}, free {size})", "tag": "storage.MemoryStore"},
    {"t": "Block broadcast_{int} stored as values in memory (estimated size {size}, free {size})", "tag": "storage.MemoryStore"},
    {"t": "Partition rdd_{int}_{int} not found, computing it", "tag": "spark.CacheManager"},
    {"t": "Found block rdd_{int}_{int} locally", "tag": "storage.BlockManager"},
    {"t": "Input split: hdfs://{ipport}/pjhe/logs/2kSOSP.log:{int}+{int}", "tag": "rdd.HadoopRDD"},
    {"t": "Times: total = {int}, boot = {int}, init = {int}, finish = {int}", "tag": "python.PythonRunner"},
    {"t": "Updating epoch to {int} and clearing cache", "tag": "spark.MapOutputTrackerWorker"},
    {"t": "Don't have map outputs for shuffle {int}, fetching them", "tag": "spark.MapOutputTrackerWorker"},
    {"t": "Got the output locations", "tag": "spark.MapOutputTrackerWorker"},
    {"t": "Getting {int} non-empty blocks out of {int} blocks", "tag": "storage.ShuffleBlockFetcherIterator"},
    {"t": "Started {int} remote fetches in {dur}", "tag": "storage.ShuffleBlockFetcherIterator"},
    {"t": "Driver commanded a shutdown", "tag": "executor.CoarseGrainedExecutorBackend"},
    {"t": "MemoryStore cleared", "tag": "storage.MemoryStore"}, {"t": "BlockManager stopped", "tag": "storage.BlockManager"},
    {"t": "Shutdown hook called", "tag": "util.ShutdownHookManager"},
    {"t": "Error sending result RpcResponse{requestId={int}, body=NioManagedBuffer{buf=java.nio.HeapByteBuffer[pos=0 lim={int} cap={int}]}} to /{ipport}; closing connection", "tag": "server.TransportRequestHandler", "lvl": "ERROR"})

# --- Zookeeper ---------------------------------------------------------------------------------------------------
fmt("zookeeper",
    {"t": "Notification time out: {int}", "tag": "QuorumPeer[myid=1]/0:0:0:0:0:0:0:0:2181:FastLeaderElection"},
    {"t": "Received connection request /{ipport}", "tag": "/10.10.34.11:3888:QuorumCnxManager$Listener"},
    {"t": "Send worker leaving thread", "tag": "SendWorker:188978561024:QuorumCnxManager$SendWorker", "lvl": "WARN"},
    {"t": "Interrupted while waiting for message on queue", "tag": "SendWorker:188978561024:QuorumCnxManager$SendWorker", "lvl": "WARN"},
    {"t": "Connection broken for id {int}, my id = {int}, error =", "tag": "RecvWorker:188978561024:QuorumCnxManager$RecvWorker", "lvl": "WARN"},
    {"t": "Interrupting SendWorker", "tag": "RecvWorker:188978561024:QuorumCnxManager$RecvWorker", "lvl": "WARN"},
    "Accepted socket connection from /{ipport}", "Client attempting to establish new session at /{ipport}",
    "Established session 0x{hexid} with negotiated timeout {int} for client /{ipport}",
    "Closed socket connection for client /{ipport} which had sessionid 0x{hexid}",
    "Closed socket connection for client /{ipport} (no session established for client)",
    {"t": "caught end of stream exception", "lvl": "WARN"},
    {"t": "Exception causing close of session 0x{hexid} due to java.io.IOException: ZooKeeperServer not running", "lvl": "WARN"},
    "Expiring session 0x{hexid}, timeout of {int}ms exceeded", "Processed session termination for sessionid: 0x{hexid}",
    "FOLLOWING", "LEADING", "LOOKING", "Getting a snapshot from leader",
    "New election. My id =  {int}, proposed zxid=0x{hexid}",
    "Notification: {int} (n.leader), 0x{hexid} (n.zxid), 0x{int} (n.round), LOOKING (n.state), {int} (n.sid), 0x{int} (n.peerEPoch), LOOKING (my state)",
    {"t": "Cannot open channel to {int} at election address /{ipport}", "lvl": "WARN"},
    "Snapshotting: 0x{hexid} to /var/lib/zookeeper/version-2/snapshot.{hexid}",
    "shutdown of request processor complete", "Shutting down")

# --- BGL ---------------------------------------------------------------------------------------------------------------
fmt("bgl",
    "instruction cache parity error corrected", "data TLB error interrupt",
    "generating core.{int}", "{int} double-hummer alignment exceptions",
    "CE sym {int}, at 0x{hexid}, mask 0x{hexid}", "total of {int} ddr error(s) detected and corrected",
    {"t": "ciod: failed to read message prefix on control stream (CioStream socket to {ipport}", "tag": "APP", "lvl": "FATAL"},
    {"t": "ciod: LOGIN chdir(/p/gb1/stella/RAPTOR/{int}/zerk) failed: No such file or directory", "tag": "APP", "lvl": "FATAL"},
    {"t": "ciod: Error reading message prefix after LOGIN_MESSAGE on CioStream socket to {ipport}: Link has been severed", "tag": "APP", "lvl": "FATAL"},
    {"t": "data storage interrupt", "lvl": "FATAL"}, {"t": "machine check interrupt", "lvl": "FATAL"},
    {"t": "rts: kernel terminated for reason {int}", "lvl": "FATAL"},
    {"t": "rts internal error", "lvl": "FATAL"}, {"t": "instruction address: 0x{hexid}", "lvl": "FATAL"},
    {"t": "machine check status register: 0x{hexid}", "lvl": "FATAL"},
    {"t": "program interrupt: fp cr field .............0", "lvl": "FATAL"},
    {"t": "floating point unavailable interrupt", "lvl": "FATAL"},
    {"t": "idoproxydb hit ASSERT condition: ASSERT expression=0 Source file=idotransportmgr.cpp Source line={int} Function=int IdoTransportMgr::SendPacket(IdoUdpMgr*, BglCtlPavTrace*)", "tag": "DISCOVERY", "lvl": "SEVERE"},
    {"t": "Node card is not fully functional", "tag": "DISCOVERY", "lvl": "ERROR"},
    {"t": "Problem communicating with service card, ido chip: U{int} java.io.IOException: Could not find EthernetSwitch on port:address 1:{int}", "tag": "DISCOVERY", "lvl": "WARNING"},
    {"t": "MidplaneSwitchController performing bit sparing on R{int}-M{int}-L{int}-U{int}-C bit {int}", "tag": "HARDWARE", "lvl": "WARNING"},
    {"t": "Temperature Over Limit on link card", "tag": "MONITOR", "lvl": "FAILURE"},
    {"t": "suppressing further interrupts of same type", "lvl": "FATAL"},
    {"t": "{int} L3 EDRAM error(s) (dcr 0x{hexid}) detected and corrected", "lvl": "INFO"},
    {"t": "critical input interrupt (unit=0x{hexid} bit=0x{hexid}): warning for torus z- wire", "lvl": "INFO"},
    {"t": "Lustre mount FAILED : bglio{int} : block_id : location", "tag": "APP", "lvl": "FATAL"},
    {"t": "MailboxMonitor::serviceMailboxes() lib_ido_error: -1019 socket closed", "tag": "MMCS", "lvl": "SEVERE"},
    {"t": "PrepareForService shutting down NodeCard(mLctn(R{int}-M{int}-N{int}), mCardSernum(203231503833343000000000594c31403{int}), mProductId(0x{hexid}), mType(2))", "tag": "CMCS", "lvl": "INFO"})

# --- HPC ----------------------------------------------------------------------------------------------------------------
fmt("hpc",
    {"t": "Component State Change: Component \\042{hpcpart}\\042 is in the unavailable state (HWID={int})"},
    {"t": "Link error on broadcast tree Interconnect-0T00:00:{int}:{int}", "tag": "node", "state": "status"},
    {"t": "Link in reset", "tag": "switch_module", "state": "error"},
    {"t": "Temperature ({int}C) exceeds warning threshold", "tag": "node", "state": "temp"},
    {"t": "ClusterFileSystem: There is no server for ServerFileSystem domain storage{int}", "tag": "unix.hw", "state": "net.niff.down"},
    {"t": "ServerFileSystem: Started service", "tag": "unix.hw", "state": "boot"},
    {"t": "Fan speeds ( {int} {int} {int} {int} {int} {int} )", "tag": "node", "state": "fan"},
    {"t": "PSU status ( on on )", "tag": "node", "state": "psu"},
    {"t": "NIFF: node node-{int} detected a failed network connection on network {ip} via interface alt0", "tag": "unix.hw", "state": "net.niff.down"},
    {"t": "NIFF: node node-{int} has detected an available network connection on network {ip} via interface alt0", "tag": "unix.hw", "state": "net.niff.up"},
    {"t": "boot command Acknowledged", "tag": "node", "state": "boot"}, {"t": "halt", "tag": "node", "state": "cmd"},
    {"t": "running running", "tag": "node", "state": "state_change.running"},
    {"t": "configured out", "tag": "node", "state": "state_change.unavailable"},
    {"t": "Node configuration command ( {word} ) timed out", "tag": "node", "state": "cmd"},
    {"t": "risBoot command Pending", "tag": "node", "state": "boot"},
    {"t": "Targeting domains:node-D{int} and nodes:node-[{int}-{int}] child of command {int}", "tag": "action", "state": "start"},
    {"t": "Command has completed successfully", "tag": "action", "state": "end"},
    {"t": "Command aborted in response to request {int}", "tag": "action", "state": "error"})

# --- Thunderbird -------------------------------------------------------------------------------------------------------
fmt("thunderbird",
    {"t": "session opened for user {user} by (uid=0)", "tag": "crond(pam_unix)[{pid}]"},
    {"t": "session closed for user {user}", "tag": "crond(pam_unix)[{pid}]"},
    {"t": "(root) CMD (run-parts /etc/cron.hourly)", "tag": "crond[{pid}]"},
    "Losing some ticks... checking if CPU frequency changed.", "ACPI: Processor [CPU{int}] (supports {int} throttling states)",
    "Memory: {int}k/{int}k available ({int}k kernel code, {int}k reserved, {int}k data, {int}k init)",
    "Kernel command line: ro root=LABEL=/ console=tty0 console=ttyS0,115200",
    "e1000: eth{int}: e1000_watchdog: NIC Link is Up 1000 Mbps Full Duplex",
    "ib_sm.x[{pid}]: [ib_sm_sweep.c:{int}]: No topology change",
    "ib_sm.x[{pid}]: [ib_sm_bringup.c:{int}]: Bringing up the subnet",
    {"t": "synchronized to {ip}, stratum {int}", "tag": "ntpd[{pid}]"},
    {"t": "Did not receive identification string from {ip}", "tag": "sshd[{pid}]"},
    {"t": "Accepted publickey for root from {ip} port {port} ssh2", "tag": "sshd[{pid}]"},
    {"t": "warning: unable to look up public/pickup: No such file or directory", "tag": "postfix/postdrop[{pid}]"},
    {"t": "connect from {fqdn}[{ip}]", "tag": "postfix/smtpd[{pid}]"},
    {"t": "disconnect from {fqdn}[{ip}]", "tag": "postfix/smtpd[{pid}]"},
    "GM: LANai is not running. Allowing port=0 open for debugging",
    "mptscsih: ioc0: attempting task abort! (sc=0x{hexid})",
    "scsi{int}: ERROR on channel 0, id 0, lun 0, CDB: Read (10) 00 {int} {int} {int} {int} 00 00 08 00",
    "hda: drive_cmd: status=0x51 { DriveReady SeekComplete Error }",
    {"t": "pbs_mom: Bad file descriptor ({int}) in tm_request, job {job}.tbird-admin1 not running", "tag": "pbs_mom"},
    {"t": "Server failed to respond to ping", "tag": "in.tftpd[{pid}]"})

# --- Apache error log -----------------------------------------------------------------------------------------------------
fmt("apache",
    "workerEnv.init() ok /etc/httpd/conf/workers2.properties",
    {"t": "mod_jk child workerEnv in error state {int}", "lvl": "error"},
    "jk2_init() Found child {pid} in scoreboard slot {int}",
    {"t": "[client {ip}] Directory index forbidden by rule: /var/www/html/", "lvl": "error"},
    {"t": "[client {ip}] File does not exist: /var/www/html/{word}.php", "lvl": "error"},
    {"t": "[client {ip}] script not found or unable to stat: /var/www/cgi-bin/{word}", "lvl": "error"},
    "Apache/2.0.49 (Fedora) configured -- resuming normal operations", "caught SIGTERM, shutting down",
    {"t": "SIGHUP received.  Attempting to restart", "lvl": "notice"},
    {"t": "child pid {pid} exit signal Segmentation fault (11)", "lvl": "notice"},
    {"t": "Digest: generating secret for digest authentication ...", "lvl": "notice"},
    {"t": "Digest: done", "lvl": "notice"}, {"t": "LDAP: Built with OpenLDAP LDAP SDK", "lvl": "notice"},
    {"t": "suEXEC mechanism enabled (wrapper: /usr/sbin/suexec)", "lvl": "notice"},
    {"t": "[client {ip}] request failed: error reading the headers", "lvl": "error"},
    {"t": "server reached MaxClients setting, consider raising the MaxClients setting", "lvl": "error"})

# --- Proxifier --------------------------------------------------------------------------------------------------------------
fmt("proxifier",
    "{fqdn}:{port} open through proxy proxy.cse.cuhk.edu.hk:5070 HTTPS",
    "{fqdn}:{port} close, {int} bytes sent, {int} bytes received, lifetime {int}:{int}",
    # Loghub's labels: with or without the humanised size, and "<1 sec", one close event
    {"t": "{fqdn}:{port} close, {int} bytes ({size}) sent, {int} bytes ({size}) received, lifetime {int}:{int}", "same": "E2"},
    "{fqdn}:{port} error : Could not connect through proxy proxy.cse.cuhk.edu.hk:5070 - Proxy server cannot establish a connection with the target, status code {int}",
    "{fqdn}:{port} error : A connection request was canceled before the completion.",
    "{fqdn}:{port} open directly", {"t": "{fqdn}:{port} close, {int} bytes sent, {int} bytes received, lifetime <1 sec", "same": "E2"},
    "open through proxy proxy.cse.cuhk.edu.hk:5070 SOCKS5", "Connection closed by peer",
    "{fqdn}:{port} error : Could not connect to proxy proxy.cse.cuhk.edu.hk:5070 - connection attempt failed with error {int}")

# --- Android ---------------------------------------------------------------------------------------------------------------
fmt("android",
    {"t": "acquire lock=2{int}, flags=0x1, tag=\"View Lock\", name=com.android.systemui, ws=null, uid={int}, pid={pid}"},
    {"t": "release:lock=2{int}, flg=0x0, tag=\"RILJ_ACK_WL\", name=com.android.phone\", ws=null, uid={int}, pid={pid}"},
    {"t": "ready=true,policy=3,wakefulness=1,wksummary=0x{int},uasummary=0x1,bootcompleted=true,boostinprogress=false,waitmodeenable=false,mode=false,manual=38,auto=-1,adj=0.0userId=0"},
    {"t": "Skipping AppWindowToken{{hexid} token=Token{{hexid} ActivityRecord{{hexid} u0 com.tencent.qt.qtl/.activity.info.NewsDetailXmlActivity t{int}}}} -- going to hide", "tag": "WindowManager"},
    {"t": "printFreezingDisplayLogsopening app wtoken = AppWindowToken{{hexid} token=Token{{hexid} ActivityRecord{{hexid} u0 com.tencent.qt.qtl/.activity.info.NewsDetailXmlActivity t{int}}}}, allDrawn= false, startingDisplayed =  false, startingMoved =  false, isRelaunching =  false", "tag": "WindowManager"},
    {"t": "setSystemUiVisibility vis={int} mask=ffffffff oldVal={int} newVal={int} diff={int} fullscreenStackVis=0 dockedStackVis=0, fullscreenStackBounds=Rect(0, 0 - 0, 0), dockedStackBounds=Rect(0, 0 - 0, 0)", "tag": "PhoneStatusBar"},
    {"t": "Skipped {int} frames!  The application may be doing too much work on its main thread.", "tag": "Choreographer", "lvl": "I"},
    {"t": "updateIsPoweredLocked: wasPowered=true, mIsPowered=true, mPlugType=2, mBatteryLevel={int}", "lvl": "I"},
    {"t": "Acquiring suspend blocker \"PowerManagerService.Display\".", "lvl": "I"},
    {"t": "Releasing suspend blocker \"PowerManagerService.Display\".", "lvl": "I"},
    {"t": "getTasks: caller {int} does not hold REAL_GET_TASKS; limiting output", "tag": "ActivityManager", "lvl": "W"},
    {"t": "Displayed com.tencent.mm/.ui.LauncherUI: +{int}ms", "tag": "ActivityManager", "lvl": "I"},
    {"t": "Start proc {pid}:com.android.{word}/u0a{int} for service com.android.{word}/.Service", "tag": "ActivityManager", "lvl": "I"},
    {"t": "Process com.android.{word} (pid {pid}) has died", "tag": "ActivityManager", "lvl": "I"},
    {"t": "Bad call made by uid {int}. Package \"com.tencent.mm\" does not belong to uid {int}.", "tag": "AppOps", "lvl": "E"},
    {"t": "mobile data service: not open, not default", "tag": "DcTracker"},
    {"t": "notifyNetworkChange: network = {int}, isHighBandwidth = false, linkCapabilitiesChanged = false", "tag": "ConnectivityService"},
    {"t": "Battery is low", "tag": "BatteryService", "lvl": "W"})

# --- HealthApp --------------------------------------------------------------------------------------------------------------
fmt("healthapp",
    {"t": "onStandStepChanged {int}", "tag": "Step_LSC"},
    {"t": "onExtend:{int} {int} {int} {int}", "tag": "Step_LSC"},
    {"t": "processHandleBroadcastAction action:android.intent.action.SCREEN_ON", "tag": "Step_StandReportReceiver"},
    {"t": "processHandleBroadcastAction action:android.intent.action.SCREEN_OFF", "tag": "Step_StandReportReceiver"},
    {"t": "REPORT : {int} {int} {int} {int}", "tag": "Step_SPUtils"},
    {"t": "getTodayTotalDetailSteps = {int}##{int}##{int}##{int}##{int}##{int}", "tag": "Step_SPUtils"},
    {"t": "setTodayTotalDetailSteps={int}##{int}##{int}##{int}##{int}##{int}", "tag": "Step_SPUtils"},
    {"t": "upLoadOneMinuteDataToEngine time={int}", "tag": "Step_StandStepCounter"},
    {"t": "flush sensor data", "tag": "Step_StandStepCounter"},
    {"t": "calculateCaloriesWithCache totalCalories={int}", "tag": "Step_ExtSDM"},
    {"t": "calculateAltitudeWithCache totalAltitude={int}", "tag": "Step_ExtSDM"},
    {"t": "setGoalNotifiShowFLag flag = false", "tag": "Step_NotificationUtil"},
    {"t": "screen status unknown,think screen on", "tag": "Step_ScreenUtil"},
    {"t": "isScreenOn true", "tag": "Step_ScreenUtil"},
    {"t": "onReceive action: android.intent.action.TIME_TICK", "tag": "Step_LSC"},
    {"t": "getBatteryLevel={int}", "tag": "HiH_HiSyncUtil"})

# --- Windows CBS --------------------------------------------------------------------------------------------------------------
fmt("windows",
    "Loaded Servicing Stack v6.1.7601.{int} with Core: C:\\Windows\\winsxs\\amd64_microsoft-windows-servicingstack_31bf3856ad364e35_6.1.7601.{int}_none_{hexid}\\cbscore.dll",
    "Ending TrustedInstaller initialization.", "Starting the TrustedInstaller main loop.",
    "TrustedInstaller service starts successfully.", "SQM: Initializing online with Windows opt-in: False",
    "SQM: Cleaning up report files older than 10 days.", "SQM: Requesting upload of all unsent reports.",
    "SQM: Failed to start upload with file pattern: C:\\Windows\\servicing\\sqm\\*_std.sqm, flags: 0x2 [HRESULT = 0x80004005 - E_FAIL]",
    "No startup processing required, TrustedInstaller service was not set as autostart, or else a reboot is still pending.",
    "Session: {int}_{int} initialized by client WindowsUpdateAgent.",
    "Read out cached package applicability for package: Package_for_KB{int}~31bf3856ad364e35~amd64~~6.1.1.{int}, ApplicableState: {int}, CurrentState:{int}",
    "Warning: Unrecognized packageExtended attribute.", "Expecting attribute name [HRESULT = 0x800f080d - CBS_E_MANIFEST_INVALID_ITEM]",
    "Failed to get next element [HRESULT = 0x800f080d - CBS_E_MANIFEST_INVALID_ITEM]",
    {"t": "Failed to internally open package. [HRESULT = 0x800f0805 - CBS_E_INVALID_PACKAGE]", "lvl": "Error"},
    {"t": "Unloading offline registry hive: {bf1a281b-ad7b-4476-ac95-f47682990ce7}GLOBALROOT/Device/HarddiskVolumeShadowCopy{int}/Windows/System32/config/SOFTWARE", "tag": "CSI"},
    {"t": "{hexid}@2016/9/28:{int}:{int}:{int}.{int} WcpInitialize (wcp.dll version 0.0.0.6) called (stack @0x7fef{hexid} @0x7fefa{hexid} @0xff{hexid})", "tag": "CSI"},
    "CBS starting trusted installer.", "Scavenge: Starts")

# --- macOS --------------------------------------------------------------------------------------------------------------------
fmt("mac",
    {"t": "IOThunderboltSwitch<0>(0x0)::listenerCallback - Thunderbolt HPD packet for route = 0x0 port = {int} unplug = 0"},
    {"t": "ARPT: {int}.{int}: wl0: MDNS: IPV4 Addr: {ip}"},
    {"t": "ARPT: {int}.{int}: AQM agg params 0xfc0 maxlen hi/lo 0x0 0xffff minlen 0x0 adjlen 0x0"},
    {"t": "AppleCamIn::systemWakeCall - messageType = 0x{int}"},
    {"t": "Thermal pressure state: {int} Memory pressure state: {int}", "tag": "com.apple.CDScheduler"},
    {"t": "CCFile::captureLog Received Capture notice id: {float}, reason = AuthFail:sslHandshakeFail", "tag": "symptomsd"},
    {"t": "network changed: v4(en0-:{ip}) v6(en0:{hexid}) DNS! Proxy SMB", "tag": "configd"},
    {"t": "Process (pid {pid}) has been sent a SIGKILL", "tag": "com.apple.xpc.launchd"},
    {"t": "[{float}] <AirPort Daemon> setPowerState: {int}", "tag": "airportd"},
    {"t": "Wake reason: ARPT (Network)", "tag": "kernel"},
    {"t": "en0: channel changed to {int},+1", "tag": "kernel"},
    {"t": "PM response took {int} ms (54, powerd)", "tag": "kernel"},
    {"t": "hibernate_page_list_setall(preflight 1) start", "tag": "kernel"},
    {"t": "[HID] [MT] MTSimpleHIDManager::deviceRemoved Device removed: 0x{hexid}", "tag": "kernel"},
    {"t": "Sandbox: com.apple.Addres({pid}) deny(1) network-outbound /private/var/run/mDNSResponder", "tag": "kernel"},
    {"t": "-[NETClientConnection effectiveBundleID] using process name apsd as bundle ID (this is expected for daemons without bundle ID", "tag": "apsd"},
    {"t": "Setting interface en0 (NOT primary, NOT expensive) to disallow TCP keepalive", "tag": "locationd"},
    {"t": "[HotspotHelper] Not available", "tag": "WirelessDiagnostics"},
    {"t": "Failed to get CPU thermal pressure", "tag": "com.apple.cts"},
    {"t": "objc[{pid}]: Class FIFinderSyncExtensionHost is implemented in both /System/Library/PrivateFrameworks/FinderKit.framework/Versions/A/FinderKit ({hex}) and /System/Library/PrivateFrameworks/FileProvider.framework/Versions/A/FileProvider ({hex}). One of the two will be used. Which one is undefined.", "tag": "QQ"},
    {"t": "BUG in libdispatch client: kevent[EVFILT_MACHPORT] monitored resource vanished before the source cancel handler was invoked", "tag": "com.apple.WebKit.WebContent"},
    {"t": "<CFNetwork> SSLHandshake failed ({int}) for {fqdn}", "tag": "Google Chrome Helper"})

# --- OpenStack -----------------------------------------------------------------------------------------------------------------
fmt("openstack",
    {"t": "{ip} \"GET /v2/{hexid}/servers/detail HTTP/1.1\" status: 200 len: {int} time: {float}", "svc": "api", "tag": "nova.osapi_compute.wsgi.server"},
    {"t": "{ip} \"POST /v2/{hexid}/os-server-external-events HTTP/1.1\" status: 200 len: {int} time: {float}", "svc": "api", "tag": "nova.osapi_compute.wsgi.server"},
    {"t": "{ip} \"DELETE /v2/{hexid}/servers/{uuid} HTTP/1.1\" status: 204 len: {int} time: {float}", "svc": "api", "tag": "nova.osapi_compute.wsgi.server"},
    {"t": "[instance: {uuid}] VM Started (Lifecycle Event)"}, {"t": "[instance: {uuid}] VM Paused (Lifecycle Event)"},
    {"t": "[instance: {uuid}] VM Resumed (Lifecycle Event)"}, {"t": "[instance: {uuid}] VM Stopped (Lifecycle Event)"},
    {"t": "[instance: {uuid}] Took {float} seconds to spawn the instance on the hypervisor."},
    {"t": "[instance: {uuid}] Took {float} seconds to build instance."},
    {"t": "[instance: {uuid}] Terminating instance"}, {"t": "[instance: {uuid}] Deleting instance files {path}"},
    {"t": "[instance: {uuid}] Attempting claim: memory {int} MB, disk {int} GB, vcpus {int} CPU", "tag": "nova.compute.claims"},
    {"t": "[instance: {uuid}] Claim successful", "tag": "nova.compute.claims"},
    {"t": "[instance: {uuid}] Creating image", "tag": "nova.virt.libvirt.driver"},
    {"t": "Auditing locally available compute resources for node cp-{int}.slowvm1.tcloud-pg0.utah.cloudlab.us", "tag": "nova.compute.resource_tracker"},
    {"t": "Final resource view: name=cp-{int}.slowvm1.tcloud-pg0.utah.cloudlab.us phys_ram={int}MB used_ram={int}MB phys_disk={int}GB used_disk={int}GB total_vcpus={int} used_vcpus={int} pci_stats=[]", "tag": "nova.compute.resource_tracker"},
    {"t": "Total usable vcpus: {int}, total allocated vcpus: {int}", "tag": "nova.compute.resource_tracker"},
    {"t": "Compute_service record updated for cp-{int}.slowvm1.tcloud-pg0.utah.cloudlab.us:cp-{int}.slowvm1.tcloud-pg0.utah.cloudlab.us", "tag": "nova.compute.resource_tracker"},
    {"t": "image {uuid} at ({path}): checking", "tag": "nova.virt.libvirt.imagecache"},
    {"t": "Active base files: {path}", "tag": "nova.virt.libvirt.imagecache"},
    {"t": "Unknown base file: {path}", "tag": "nova.virt.libvirt.imagecache", "lvl": "WARNING"},
    {"t": "[instance: {uuid}] During sync_power_state the instance has a pending task (spawning). Skip.", "tag": "nova.compute.manager"})

# --- NCCL ----------------------------------------------------------------------------------------------------------------------
fmt("nccl",
    "Bootstrap : Using eth0:{ip}<0>", "NET/Plugin : No plugin found (libnccl-net.so), using internal implementation",
    "NET/IB : Using [0]mlx5_{int}:1/IB [1]mlx5_{int}:1/IB [2]mlx5_{int}:1/IB ; OOB eth0:{ip}<0>",
    "Using network IB", "cudaDriverVersion {int}", "NCCL version 2.{int}.{int}+cuda12.{int}",
    "comm {hex} rank {rank} nranks {int} cudaDev {gpu} busId {int} - Init START",
    "comm {hex} rank {rank} nranks {int} cudaDev {gpu} busId {int} commId 0x{hexid} - Init COMPLETE",
    "Setting affinity for GPU {gpu} to ffffffff,00000000,ffffffff",
    "Channel {int}/{int} :    0   1   2   3   4   5   6   7",
    "Channel {int}/0 : {int}[{int}] -> {int}[{int}] via P2P/IPC/read",
    "Channel {int}/0 : {int}[{int}] -> {int}[{int}] [send] via NET/IB/{int}/GDRDMA",
    "Channel {int}/0 : {int}[{int}] -> {int}[{int}] [receive] via NET/IB/{int}/GDRDMA",
    "Trees [0] {int}/-1/-1->{int}->{int} [1] {int}/-1/-1->{int}->{int}",
    "Connected all rings", "Connected all trees", "threadThresholds 8/8/64 | 512/8/64 | 512 | 512",
    "{int} coll channels, {int} nvls channels, {int} p2p channels, {int} p2p channels per peer",
    "comm {hex} rank {rank} nRanks {int} nNodes {int} localRanks {int} localRank {int} MNNVL 0",
    {"t": "NET/IB : Got completion from peer {ip}<{port}> with error 12, opcode 0, len 0, vendor err 129 (Recv)", "lvl": "WARN", "src": "transport/net_ib.cc:{int} "},
    {"t": "Call to ibv_modify_qp failed with error Connection timed out", "lvl": "WARN", "src": "misc/ibvwrap.cc:{int} "},
    {"t": "Cuda failure 'out of memory'", "lvl": "WARN", "src": "enqueue.cc:{int} "},
    {"t": "transport/net.cc:{int} -> 6", "lvl": "INFO"}, {"t": "init.cc:{int} -> 2", "lvl": "INFO"},
    {"t": "comm {hex} rank {rank} nranks {int} cudaDev {gpu} busId {int} - Abort COMPLETE", "lvl": "INFO"},
    {"t": "[Service thread] Connection closed by localRank {int}", "lvl": "WARN"},
    {"t": "Using non-device net plugin version 0", "lvl": "INFO"},
    {"t": "P2P plugin IBext_v8", "lvl": "INFO"},
    {"t": "CC Off, Multi-GPU CC Off, workFifoBytes {int}", "lvl": "INFO"})

# --- PyTorch distributed (torchrun elastic, c10d) -------------------------------------------------------------------------------
def _elastic(lvl: str):
    return lambda: f"[2025-11-{__import__('random').randrange(1, 29):02d} 12:{__import__('random').randrange(60):02d}:00,123] torch.distributed.elastic.multiprocessing.api: [{lvl}] "


def _c10d(lvl: str, src: str):
    return lambda: f"[rank{__import__('random').randrange(64)}]:[{lvl} ProcessGroupNCCL.cpp:{src}] "


fmt("torch",
    {"t": "Sending process {pid} closing signal SIGTERM", "hdr": _elastic("WARNING")},
    {"t": "failed (exitcode: {int}) local_rank: {int} (pid: {pid}) of binary: /usr/bin/python3", "hdr": _elastic("ERROR")},
    {"t": "Unable to shutdown process {pid} via Signals.SIGTERM, forcefully exiting via Signals.SIGKILL", "hdr": _elastic("WARNING")},
    {"t": "[Rank {rank}] Watchdog caught collective operation timeout: WorkNCCL(SeqNum={int}, OpType=ALLREDUCE, NumelIn={int}, NumelOut={int}, Timeout(ms)=600000) ran for {int} milliseconds before timing out.", "hdr": _c10d("E", "{int}")},
    {"t": "[Rank {rank}] Exception (either an error or timeout) detected by watchdog at work: {int}, last enqueued NCCL work: {int}, last completed NCCL work: {int}.", "hdr": _c10d("E", "{int}")},
    {"t": "[Rank {rank}] Timeout at NCCL work: {int}, last enqueued NCCL work: {int}, last completed NCCL work: {int}.", "hdr": _c10d("E", "{int}")},
    {"t": "[PG 0 Rank {rank}] ProcessGroupNCCL initialization options: size: {int}, global rank: {rank}, TIMEOUT(ms): 600000, USE_HIGH_PRIORITY_STREAM: 0, SPLIT_FROM: 0, SPLIT_COLOR: 0, PG Name: 0", "hdr": _c10d("I", "{int}")},
    {"t": "[PG 0 Rank {rank}] ProcessGroupNCCL environments: NCCL version: 2.{int}.{int}, TORCH_NCCL_ASYNC_ERROR_HANDLING: 3", "hdr": _c10d("I", "{int}")},
    {"t": "To avoid data inconsistency, we are taking the entire process down.", "hdr": _c10d("E", "{int}")},
    {"t": "Rank {rank} is connected to 0 peer ranks. Expected number of connected peer ranks is : 0", "hdr": lambda: "[I socket.cpp:{}] ".format(__import__('random').randrange(900))},
    {"t": "[c10d] The client socket has failed to connect to [{host}]:{port} (errno: 111 - Connection refused).", "hdr": lambda: "[W socket.cpp:{}] ".format(__import__('random').randrange(900))},
    {"t": "Starting elastic_operator with launch configs:", "hdr": lambda: "INFO:torch.distributed.launcher.api:"},
    {"t": "[default] Rendezvous complete for workers. Result:", "hdr": lambda: "INFO:torch.distributed.elastic.agent.server.api:"},
    {"t": "Local worker group finished ({state}). Waiting {int} seconds for other agents to finish", "hdr": lambda: "INFO:torch.distributed.elastic.agent.server.api:"},
    {"t": "step {int} | loss {float} | lr {float} | grad_norm {float} | tokens/s {int}", "hdr": lambda: f"[rank{__import__('random').randrange(64)}]: "},
    {"t": "Saving checkpoint to {path} ({size}) took {dur}", "hdr": lambda: f"[rank{__import__('random').randrange(64)}]: "},
    {"t": "Traceback (most recent call last):\n  File \"/opt/train/train.py\", line {int}, in <module>\n    main()\n  File \"/opt/train/train.py\", line {int}, in main\n    loss.backward()\ntorch.OutOfMemoryError: CUDA out of memory. Tried to allocate {size}. GPU {gpu} has a total capacity of 79.10 GiB of which {size} is free.", "hdr": lambda: ""},
    {"t": "Traceback (most recent call last):\n  File \"/opt/train/train.py\", line {int}, in <module>\n    dist.all_reduce(t)\ntorch.distributed.DistBackendError: NCCL error in: ../torch/csrc/distributed/c10d/NCCLUtils.hpp:{int}, unhandled system error (run with NCCL_DEBUG=INFO for details), NCCL version 2.{int}.{int}", "hdr": lambda: ""})

# --- Slurm daemons ------------------------------------------------------------------------------------------------------------------
fmt("slurm",
    "launch task StepId={step} request from UID:{int} GID:{int} HOST:{ip} PORT:{port}",
    "task/affinity: lllp_distribution: JobId={job} manual binding: none,one_thread",
    {"t": "done with job", "step": True}, {"t": "Sent signal 9 to StepId={step}", "step": True},
    "_run_prolog: run job script took usec={int}", "_run_prolog: prolog with lock for job {job} ran for {int} seconds",
    "prolog for job {job} ran for {int} seconds", "[job {job}] attempting to run epilog [/etc/slurm/epilog.sh]",
    {"t": "Could not launch job {job} and not able to requeue it, cancelling job", "lvl": "error"},
    {"t": "Node gpu-node-{int} now responding", "lvl": ""},
    "sched: Allocate JobId={job} NodeList={nodelist} #CPUs={int} Partition=gpu",
    "_job_complete: JobId={job} WEXITSTATUS {int}", "_job_complete: JobId={job} done",
    "_slurm_rpc_submit_batch_job: JobId={job} InitPrio={int} usec={int}",
    "_slurm_rpc_kill_job: REQUEST_KILL_JOB JobId={job} uid {int}",
    "update_node: node gpu-node-{int} reason set to: {word} GPU Xid",
    "update_node: node gpu-node-{int} state set to DRAINED",
    {"t": "Nodes gpu-node-[{int}-{int}] not responding", "lvl": "error"},
    {"t": "slurm_receive_msg [{ipport}]: Zero Bytes were transmitted or received", "lvl": "error"},
    {"t": "Job {job} exceeded memory limit ({int} > {int}), being killed", "lvl": "error"},
    {"t": "*** JOB {job} ON gpu-node-{int} CANCELLED AT 2025-11-{int}T12:{int}:{int} DUE TO TIME LIMIT ***", "lvl": "error"},
    {"t": "Timeout waiting for completion of {int} threads", "lvl": "error"},
    {"t": "gres/gpu: _get_gres_cnt: gres.conf:{int} Inconsistent GRES count ({int} != {int}) for node gpu-node-{int}", "lvl": "error"},
    "backfill: Started JobId={job} in gpu on {nodelist}", "Resending TERMINATE_JOB request JobId={job} Nodelist={nodelist}",
    {"t": "job_str_signal({job}): invalid job id {job}", "lvl": "debug"},
    {"t": "Warning: Note very large processing time from _slurm_rpc_dump_jobs: usec={int} began=12:{int}:{int}.{int}", "lvl": "warning"})

# --- Python logging (with tracebacks) ---------------------------------------------------------------------------------------------
fmt("python",
    "Loading dataset from {path}", "Loaded {int} samples in {dur}", "Epoch {int} started",
    "Epoch {int} finished: train_loss={float} val_loss={float}",
    {"t": "Checkpoint saved to {path}", "tag": "checkpoint"},
    {"t": "Resuming from checkpoint {path} at step {int}", "tag": "checkpoint"},
    {"t": "GPU {gpu} memory usage {size} of {size}", "tag": "monitor"},
    {"t": "Gradient overflow. Skipping step, loss scaler {int} reducing loss scale to {float}", "tag": "amp", "lvl": "WARNING"},
    {"t": "Data loader worker {int} is slow: {dur} per batch", "tag": "data", "lvl": "WARNING"},
    {"t": "Connection to {ipport} failed, retrying in {dur}", "tag": "client", "lvl": "WARNING"},
    {"t": "Failed to upload metrics to {fqdn}: HTTP {int}", "tag": "metrics", "lvl": "ERROR"},
    {"t": "Unhandled exception in step {int}\nTraceback (most recent call last):\n  File \"/opt/train/loop.py\", line {int}, in run\n    batch = next(it)\n  File \"/usr/lib/python3.11/site-packages/torch/utils/data/dataloader.py\", line {int}, in __next__\n    data = self._next_data()\nRuntimeError: DataLoader worker (pid {pid}) is killed by signal: Killed.", "lvl": "ERROR"},
    {"t": "Evaluation failed\nTraceback (most recent call last):\n  File \"/opt/train/eval.py\", line {int}, in evaluate\n    score = metric(preds, labels)\nValueError: shapes ({int},) and ({int},) not aligned", "lvl": "ERROR"},
    {"t": "Could not read {path}\nTraceback (most recent call last):\n  File \"/opt/train/data.py\", line {int}, in load\n    with open(path) as f:\nFileNotFoundError: [Errno 2] No such file or directory: '{path}'\n\nDuring handling of the above exception, another exception occurred:\n\nTraceback (most recent call last):\n  File \"/opt/train/data.py\", line {int}, in load\n    raise DatasetError(path)\ndata.DatasetError: {path}", "lvl": "ERROR"},
    "Config: batch_size={int} lr={float} warmup={int} seed={int}", "World size {int}, rank {rank}, local rank {gpu}",
    {"t": "Shutting down after {int} steps", "tag": "trainer"})

# --- Kubernetes CRI container logs (the payload is a log4j-ish line of its own) -------------------------------------------------
fmt("cri",
    "Starting workers worker_count={int}", "Reconciling pod default/trainer-{hexid}",
    "Successfully assigned default/trainer-{int} to {host}", "Pulling image \"nvcr.io/nvidia/pytorch:24.{int}-py3\"",
    "Container image \"nvcr.io/nvidia/k8s-device-plugin:v0.{int}.0\" already present on machine",
    {"t": "Failed to pull image \"registry.local/train:{hexid}\": rpc error: code = NotFound", "lvl": "ERROR"},
    {"t": "Back-off restarting failed container trainer in pod trainer-{int}_default({uuid})", "lvl": "WARN"},
    "Observed a panic in reconciler: runtime error: invalid memory address or nil pointer dereference",
    "Readiness probe failed: Get \"http://{ipport}/healthz\": dial tcp {ipport}: connect: connection refused",
    "Liveness probe failed: HTTP probe failed with statuscode: {int}",
    "Allocated GPU {uuid} to container trainer in pod default/trainer-{int}",
    "Updated node status: allocatable nvidia.com/gpu={int}",
    {"t": "Health check failed for device GPU-{uuid}: XID error {int}", "lvl": "WARN", "tag": "nvidia-device-plugin"},
    "Leader election lost", "successfully acquired lease kube-system/gpu-operator")

# --- journald JSON export -----------------------------------------------------------------------------------------------------
fmt("journald",
    {"t": "Started Session {int} of User {user}.", "tag": "systemd"}, {"t": "Stopping User Manager for UID {int}...", "tag": "systemd"},
    {"t": "pam_unix(sshd:session): session opened for user {user}(uid={int}) by (uid=0)", "tag": "sshd"},
    {"t": "Accepted publickey for {user} from {ip} port {port} ssh2: ED25519 SHA256:{hexid}", "tag": "sshd"},
    {"t": "nvidia-smi: Failed to initialize NVML: Driver/library version mismatch", "tag": "nvidia-smi", "prio": 3},
    {"t": "time=\"2025-11-30T12:00:00Z\" level=info msg=\"starting container\" id={hexid}", "tag": "containerd"},
    {"t": "Created slice User Slice of UID {int}.", "tag": "systemd"},
    {"t": "NVRM: Xid (PCI:{pci}): 94, pid={pid}, Contained: CE User Channel (0x{int}). RST: No, D-RST: No", "tag": "kernel", "prio": 4},
    {"t": "Reached target Multi-User System.", "tag": "systemd"}, {"t": "Listening on D-Bus System Message Bus Socket.", "tag": "systemd"},
    {"t": "Condition check resulted in Flexible I/O Tester being skipped.", "tag": "systemd"})

# --- glog ---------------------------------------------------------------------------------------------------------------------------
fmt("glog",
    "Listening on {ipport}", "Received request from {ipport} method=Infer model={word} batch={int}",
    "Loaded model {word} version {int} in {dur}", "Successfully loaded '{word}' version {int}",
    {"t": "Model {word} failed to load: failed to allocate {size} on GPU {gpu}", "lvl": "E"},
    {"t": "Deadline exceeded for request {uuid} after {dur}", "lvl": "W"},
    "Started GRPCInferenceService at 0.0.0.0:{port}", "Started HTTPService at 0.0.0.0:{port}",
    {"t": "Check failed: status.ok() Internal: CUDA error {int}", "lvl": "F"},
    "Collective allreduce of {size} took {dur}", "Polling model repository")

# --- web access logs ----------------------------------------------------------------------------------------------------------------
fmt("access",
    "\"GET {url} HTTP/1.1\" 200 {int} \"-\" \"Mozilla/5.0 (X11; Linux x86_64)\"",
    "\"POST /api/v1/query HTTP/1.1\" 200 {int} \"-\" \"python-httpx/0.27.0\"",
    "\"GET /healthz HTTP/1.1\" 200 2 \"-\" \"kube-probe/1.{int}\"",
    "\"GET /metrics HTTP/1.1\" 200 {int} \"-\" \"Prometheus/2.{int}.0\"",
    {"t": "\"GET {url} HTTP/1.1\" 404 {int} \"-\" \"curl/8.{int}.0\"", "same": "E1"},
    "\"PUT /api/v1/silences/{int} HTTP/1.1\" 201 {int} \"-\" \"gpuwatch/1.0\"",
    "\"GET /favicon.ico HTTP/1.1\" 404 {int} \"http://{fqdn}/\" \"Mozilla/5.0\"")


# ==== more events per format (the corpus holds over a thousand distinct events in all) ===========================
def _xid_events() -> list[dict]:
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from schemas.xid import CATALOG
    return [{"t": f"NVRM: Xid (PCI:{{pci}}): {code}, pid={{pid}}, name=python, {info.meaning}"}
            for code, info in sorted(CATALOG.items()) if code not in (13, 31, 48, 79)]


fmt("kernel", *_xid_events(), *[
    "nvidia-peermem nv_get_p2p_free_callback:{int} ERROR detected invalid context, skipping further processing",
    "NVRM: GPU {pci}: RmInitAdapter failed! (0x{int}:0x{int}:{int})", "NVRM: GPU {pci}: rm_init_adapter failed, device minor number {int}",
    "NVRM: A GPU crash dump has been created. If possible, please run nvidia-bug-report.sh as root to collect this data.",
    "NVRM: nvAssertFailedNoLog: Assertion failed: 0 @ g_kern_gmmu_nvoc.h:{int}",
    "nvidia-nvswitch{int}: SXid (PCI:{pci}): {int}, Non-fatal, Link {int} egress non-posted PRIV error",
    "nvidia-nvswitch{int}: SXid (PCI:{pci}): {int}, Fatal, Link {int} sourcetrack TCEN0 crumbstore ECC DBE Error",
    "mlx5_core {pci}: mlx5_fw_tracer_handle_traces:{int}:(pid {pid}): FWTracer: Error in FW",
    "mlx5_core {pci}: poll_health:{int}:(pid 0): Fatal error {int} detected",
    "infiniband mlx5_{int}: mlx5_ib_query_port:{int}:(pid {pid}): Port {int} is down",
    "bond0: (slave eno{int}): link status definitely down, disabling slave",
    "bond0: (slave eno{int}): link status definitely up, 25000 Mbps full duplex",
    "TCP: request_sock_TCP: Possible SYN flooding on port {port}. Sending cookies.  Check SNMP counters.",
    "md/raid1:md{int}: Disk failure on nvme{int}n1p2, disabling device.",
    "blk_update_request: I/O error, dev nvme{int}n1, sector {int} op 0x0:(READ) flags 0x0 phys_seg {int} prio class 0",
    "CPU{int}: Core temperature above threshold, cpu clock throttled (total events = {int})",
    "CPU{int}: Package temperature/speed normal", "mce: [Hardware Error]: Machine check events logged",
    "kvm: already loaded vendor module 'kvm_intel'", "device-mapper: multipath: Failing path {int}:{int}.",
])

SYSTEMD_MORE = ["Kubernetes kubelet.", "containerd container runtime.", "DCGM host engine.", "NVIDIA DCGM exporter.",
                "Lustre client mount.", "Mellanox OFED drivers.", "OpenSM InfiniBand subnet manager.",
                "Chrony NTP client/server.", "Journal Service.", "User Login Management.", "Postfix Mail Transport Agent.",
                "gpuwatch node agent.", "System Logging Service.", "Disk Manager.", "Authorization Manager.",
                "Permit User Sessions."]
fmt("syslog", *cross(["Started", "Stopped", "Starting", "Stopping"], SYSTEMD_MORE, tag="systemd"),
    {"t": "Reached target Multi-User System.", "tag": "systemd"}, {"t": "Reached target Network is Online.", "tag": "systemd"},
    {"t": "Listening on Docker Socket for the API.", "tag": "systemd"},
    {"t": "ntpd exiting on signal 15", "tag": "ntpd"}, {"t": "kernel reports TIME_ERROR: 0x41: Clock Unsynchronized", "tag": "ntpd"},
    {"t": "Listen normally on {int} eth0 {ip} UDP 123", "tag": "ntpd"},
    {"t": "device (eno{int}): state change: activated -> deactivating (reason 'connection-removed')", "tag": "NetworkManager"},
    {"t": "dhcp4 (eno{int}): state changed bound -> done", "tag": "NetworkManager"},
    {"t": "[system] Activating via systemd: service name='org.freedesktop.hostname1' unit='dbus-org.freedesktop.hostname1.service'", "tag": "dbus-daemon"},
    {"t": "[system] Successfully activated service 'org.freedesktop.hostname1'", "tag": "dbus-daemon"},
    {"t": "Unable to open configuration file /etc/dcgm/dcgm.conf", "tag": "nv-hostengine"},
    {"t": "Failed to start DCGM exporter: error initializing DCGM: libdcgm.so not Found", "tag": "dcgm-exporter"},
    {"t": "connect from unknown[{ip}]", "tag": "postfix/smtpd"}, {"t": "lost connection after CONNECT from unknown[{ip}]", "tag": "postfix/smtpd"},
    {"t": "imklog 8.2102.0, log source = /proc/kmsg started.", "tag": "rsyslogd"},
    {"t": "action 'action-{int}-builtin:omfwd' suspended (module 'builtin:omfwd'), retry 0.", "tag": "rsyslogd"},
    {"t": "Selected source {ip} (ntp.ubuntu.com)", "tag": "chronyd"}, {"t": "System clock wrong by {float} seconds", "tag": "chronyd"},
    {"t": "mount.nfs: Connection timed out", "tag": "mount"}, {"t": "nslcd: [{hexid}] <group/member=\"{user}\"> no available LDAP server found", "tag": "nslcd"})

fmt("slurm",
    "_slurm_rpc_complete_batch_script: JobId={job}", "_slurm_rpc_update_node: node gpu-node-{int} state DRAIN reason {word}",
    "_slurm_rpc_allocate_resources: JobId={job} NodeList={nodelist} usec={int}", "_slurm_rpc_reconfigure_controller: completed usec={int}",
    "_slurm_rpc_requeue: Requeue of JobId={job} returned an error: Only batch jobs are accepted or processed",
    "_slurm_rpc_step_complete StepId={step} usec={int}", "_slurm_rpc_job_step_create: StepId={step} gpu-node-[{int}-{int}] usec={int}",
    "Registering slurmd at port {port} with slurmctld", "slurmd version 23.02.{int} started", "slurmd started on Sun, 30 Nov 2025 12:{int}:{int} +0000",
    "CPUs={int} Boards=1 Sockets=2 Cores={int} Threads=2 Memory={int} TmpDisk={int} Uptime={int} CPUSpecList=(null) FeaturesAvail=(null) FeaturesActive=(null)",
    "gres/gpu: state for gpu-node-{int}", "  gres_cnt found:{int} configured:{int} avail:{int} alloc:{int}",
    "task/cgroup: _memcg_initialize: job: alloc={int}MB mem.limit={int}MB memsw.limit=unlimited",
    "task/cgroup: _memcg_initialize: step: alloc={int}MB mem.limit={int}MB memsw.limit=unlimited",
    "Launching batch job {job} for UID {int}", "credential for job {job} revoked",
    {"t": "Unable to contact slurm controller (connect failure)", "lvl": "error"},
    {"t": "cgroup_v2: unable to remove step memcg : Device or resource busy", "lvl": "error"},
    {"t": "Node gpu-node-{int} has low real_memory size ({int} < {int})", "lvl": "error"},
    {"t": "Prolog launch failure, JobId={job}", "lvl": "error"},
    {"t": "_handle_assoc_tres_run_secs: job {job}: assoc {int} TRES cpu grp_used_tres_run_secs underflow, tried to remove {int} seconds when only {int} remained.", "lvl": "error"},
    "Warning: Note very large processing time from _slurmctld_background: usec={int} began=12:{int}:{int}.{int}",
    "requeue job JobId={job} due to failure of node gpu-node-{int}", "power_save: pid {pid} waking nodes {nodelist}")

fmt("nccl",
    "NCCL_SOCKET_IFNAME set by environment to eth0", "NCCL_IB_HCA set by environment to mlx5",
    "NCCL_DEBUG set by environment to INFO", "NET/Socket : Using [0]eth0:{ip}<0>", "Using network Socket",
    "Could not enable P2P between dev {int}(={int}) and dev {int}(={int})",
    "Channel {int}/0 : {int}[{int}] -> {int}[{int}] via SHM/direct/direct",
    "NVLS multicast support is not available on dev {int}", "NVLS comm {hex} headRank {int} nHeads {int} buffSize {int} memSize {int} nvlsPerRankSize {int} nvlsTotalSize {int}",
    "Connected NVLS tree", "ncclCommInitRank comm {hex} rank {rank} nranks {int} cudaDev {gpu} nvmlDev {gpu} busId {int} commId 0x{hexid} - Init COMPLETE",
    "Init timings: rank {rank} nranks {int} total {float} (kernels {float}, bootstrap {float}, allgathers {float}, topo {float}, graphs {float}, connections {float}, rest {float})",
    "comm {hex} rank {rank} nRanks {int} nNodes {int} localRanks {int} localRank {int} MNNVL 0 - Destroy COMPLETE",
    {"t": "NET/IB : req {int} completed with error", "lvl": "WARN", "src": "transport/net_ib.cc:{int} "},
    {"t": "Timeout waiting for RTS from peer rank {rank}", "lvl": "WARN"},
    {"t": "AllReduce: opCount {hex} sendbuff {hex} recvbuff {hex} count {int} datatype 7 op 0 root 0 comm {hex} [nranks={int}] stream {hex}", "lvl": "INFO"},
    {"t": "ib_plugin: Failed to open device mlx5_{int}", "lvl": "WARN"},
    {"t": "Failed to open libibverbs.so[.1]", "lvl": "WARN"})

fmt("python",
    {"t": "Found {int} checkpoints under {path}; keeping the newest {int}", "tag": "checkpoint"},
    {"t": "Deleted old checkpoint {path}", "tag": "checkpoint"},
    {"t": "Tokenizer loaded: vocab_size={int}", "tag": "data"}, {"t": "Shard {path} has {int} samples", "tag": "data"},
    {"t": "Learning rate schedule: cosine, warmup {int} steps, decay to {float}", "tag": "optim"},
    {"t": "Using fused AdamW", "tag": "optim"}, {"t": "Mixed precision: bf16", "tag": "amp"},
    {"t": "Compiling model with torch.compile (mode=max-autotune)", "tag": "model"},
    {"t": "Model has {int} parameters ({int} trainable)", "tag": "model"},
    {"t": "Activation checkpointing enabled for {int} blocks", "tag": "model"},
    {"t": "Validation accuracy {float} at step {int}", "tag": "eval"},
    {"t": "New best validation loss {float}, saving", "tag": "eval"},
    {"t": "NaN detected in loss at step {int}; skipping batch", "tag": "trainer", "lvl": "WARNING"},
    {"t": "Gradient norm {float} exceeds clip {float}", "tag": "trainer", "lvl": "WARNING"},
    {"t": "Heartbeat to {fqdn} timed out after {dur}", "tag": "client", "lvl": "ERROR"},
    {"t": "wandb: Network error (ReadTimeout), entering retry loop.", "tag": "wandb", "lvl": "WARNING"},
    {"t": "Received SIGTERM, saving emergency checkpoint", "tag": "trainer", "lvl": "WARNING"},
    {"t": "Emergency checkpoint written to {path} in {dur}", "tag": "trainer"},
    {"t": "Profiler trace written to {path}", "tag": "profiler"},
    {"t": "Peak memory allocated {size}, reserved {size}", "tag": "monitor"})

fmt("log4j",
    "Registering with RM using containers :[]", "Calling handler for JobFinishedEvent", "Stopping JobHistoryEventHandler. Size of the outstanding queue size is {int}",
    "Copying hdfs://{host}:9000/tmp/hadoop-yarn/staging/{user}/.staging/job_{job}_{int}/job_{job}_{int}_1.jhist to hdfs://{host}:9000/tmp/hadoop-yarn/staging/history/done_intermediate/{user}/job_{job}_{int}-{int}.jhist_tmp",
    "Moved tmp to done: hdfs://{host}:9000/tmp/hadoop-yarn/staging/history/done_intermediate/{user}/job_{job}_{int}.summary_tmp to hdfs://{host}:9000/tmp/hadoop-yarn/staging/history/done_intermediate/{user}/job_{job}_{int}.summary",
    "Setting job diagnostics to", "History url is http://{host}:19888/jobhistory/job/job_{job}_{int}",
    "Waiting for application to be successfully unregistered.", "Final Stats: PendingReds:{int} ScheduledMaps:{int} ScheduledReds:{int} AssignedMaps:{int} AssignedReds:{int} CompletedMaps:{int} CompletedReds:{int} ContainersAllocated:{int} ContainersCompleted:{int} HostLocal:{int} RackLocal:{int}",
    "Deleting staging directory hdfs://{host}:9000 /tmp/hadoop-yarn/staging/{user}/.staging/job_{job}_{int}",
    "Stopping server on {port}", "Stopping IPC Server listener on {port}", "Stopping IPC Server Responder",
    "TaskHeartbeatHandler thread interrupted", "Shuffle port returned by ContainerManager for attempt_{job}_{int}_m_{int}_{int} : {port}",
    "JVM with ID : jvm_{job}_{int}_m_{int} asked for a task", "JVM with ID: jvm_{job}_{int}_m_{int} given task: attempt_{job}_{int}_m_{int}_{int}",
    {"t": "Lost contact with ResourceManager; retrying", "lvl": "WARN"},
    {"t": "Could not delete hdfs://{host}:9000/out/_temporary/1/_temporary/attempt_{job}_{int}_m_{int}_{int}", "lvl": "WARN"},
    {"t": "Task cleanup failed for attempt attempt_{job}_{int}_m_{int}_{int}", "lvl": "ERROR"})

fmt("spark",
    {"t": "Told to re-register on heartbeat", "tag": "storage.BlockManager"},
    {"t": "BlockManager re-registering with master", "tag": "storage.BlockManager"},
    {"t": "Reporting {int} blocks to the master.", "tag": "storage.BlockManager"},
    {"t": "Removing RDD {int}", "tag": "storage.BlockManager"},
    {"t": "Executor is trying to kill task {int}.0 in stage {int}.0 (TID {int})", "tag": "executor.Executor"},
    {"t": "Executor killed task {int}.0 in stage {int}.0 (TID {int})", "tag": "executor.Executor"},
    {"t": "Exception in task {int}.0 in stage {int}.0 (TID {int})", "tag": "executor.Executor", "lvl": "ERROR"},
    {"t": "Attempting to kill Python Worker", "tag": "python.PythonRunner"},
    {"t": "Error sending message [message = Heartbeat({int},[Lscala.Tuple2;@{hexid},BlockManagerId({int}, {host}, {port}))] in {int} attempts", "tag": "executor.Executor", "lvl": "WARN"},
    {"t": "Issue communicating with driver in heartbeater", "tag": "executor.Executor", "lvl": "WARN"},
    {"t": "RECEIVED SIGNAL 15: SIGTERM", "tag": "executor.CoarseGrainedExecutorBackend", "lvl": "ERROR"},
    {"t": "Deleting directory /opt/hdfs/nodemanager/usercache/{user}/appcache/application_{job}_{int}/spark-{uuid}", "tag": "util.ShutdownHookManager"},
    {"t": "Saved output of task 'attempt_{job}_{int}_m_{int}_{int}' to hdfs://{ipport}/pjhe/test/{int}/_temporary/0/task_{job}_{int}_m_{int}", "tag": "output.FileOutputCommitter"},
    {"t": "attempt_{job}_{int}_m_{int}_{int}: Committed", "tag": "mapred.SparkHadoopMapRedUtil"})

fmt("openssh",
    "Accepted publickey for {user} from {ip} port {port} ssh2: RSA SHA256:{hexid}",
    "Received disconnect from {ip} port {port}:11: Normal Shutdown, Thank you for playing [preauth]",
    "Unable to negotiate with {ip} port {port}: no matching key exchange method found. Their offer: diffie-hellman-group1-sha1 [preauth]",
    "Connection reset by {ip} port {port} [preauth]", "Server listening on 0.0.0.0 port 22.", "Server listening on :: port 22.",
    "Received signal 15; terminating.", "error: maximum authentication attempts exceeded for root from {ip} port {port} ssh2 [preauth]",
    "Corrupted MAC on input. [preauth]", "Timeout, client not responding from {ip} port {port}")

fmt("windows",
    "Session: {int}_{int} finalized. Reboot required: no [HRESULT = 0x00000000 - S_OK]",
    "Exec: Processing complete, session(Corruption Repairing): {int}_{int} [HRESULT = 0x00000000 - S_OK]",
    "Trusted Installer is shutting down because: SHUTDOWN_REASON_AUTOSTOP", "TrustedInstaller service stops successfully.",
    "Startup processing thread terminated normally", "Ending the TrustedInstaller main loop.",
    "Failed to get session package state for package: Package_for_KB{int}~31bf3856ad364e35~amd64~~6.1.1.{int} [HRESULT = 0x800f0805 - CBS_E_INVALID_PACKAGE]",
    "Appl: detect Parent, Package: Package_for_KB{int}~31bf3856ad364e35~amd64~~6.1.1.{int}, Parent: Microsoft-Windows-Client-Features-Package~31bf3856ad364e35~amd64~~6.1.7601.{int}, Disposition = Detect, VersionComp: EQ, BuildComp: GE, RevisionComp: GE, Exist: present",
    "Appl: Evaluating package applicability for package Package_for_KB{int}~31bf3856ad364e35~amd64~~6.1.1.{int}, applicable state: Installed",
    "Scavenge: Completes with HRESULT 0x00000000", "Reboot mark refs: {int}", "Idle processing thread terminated normally",
    "NonStart: Checking to ensure startup processing was not required.", "Perf: InstallUninstallChain complete.",
    "Not able to query DWORD from registry: HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Component Based Servicing\\{word}")

fmt("mac",
    {"t": "Previous sleep cause: {int}", "tag": "kernel"}, {"t": "Previous shutdown cause: {int}", "tag": "kernel"},
    {"t": "AirPort: Link Down on awdl0. Reason 1 (Unspecified).", "tag": "kernel"},
    {"t": "AirPort: Link Up on en0", "tag": "kernel"}, {"t": "Bluetooth -- LE is supported - Disable LE meta event", "tag": "kernel"},
    {"t": "IOPMrootDomain: idleSleepPreventersWithTimeout is empty", "tag": "kernel"},
    {"t": "en0: BSSID changed to {mac}", "tag": "kernel"}, {"t": "USBMSC Identifier (non-unique): {hexid} 0x5ac 0x8406 0x820, 3", "tag": "kernel"},
    {"t": "did not find an exisiting VSM for pid {pid}", "tag": "WindowServer"},
    {"t": "CGXDisplayDidWakeNotification [{int}]: posting kCGSDisplayDidWake", "tag": "WindowServer"},
    {"t": "handle_will_sleep_notification: will sleep", "tag": "WindowServer"},
    {"t": "Service exited with abnormal code: {int}", "tag": "com.apple.xpc.launchd"},
    {"t": "Endpoint has been activated through legacy launch(3) APIs. Please switch to XPC or bootstrap_check_in(): com.apple.{word}", "tag": "com.apple.xpc.launchd"},
    {"t": "Connection 0x{hexid} to {ipport}: Cancelled via user request", "tag": "nsurlsessiond"},
    {"t": "TCP Conn 0x{hexid} SSL Handshake failed ({int})", "tag": "Google Chrome Helper"},
    {"t": "WiFi: [{float}]: Cannot keep system awake for network", "tag": "airportd"},
    {"t": "mDNSResponder: Setting DNS server {ip}", "tag": "mDNSResponder"},
    {"t": "Unable to bootstrap_lookup connection port for 'com.apple.photoanalysisd': Unknown service name", "tag": "photolibraryd"},
    {"t": "Invoking DSPCA to refresh keychain state", "tag": "secd"},
    {"t": "Cannot find executable for CFBundle 0x{hexid} </Library/Printers/{word}.bundle> (not loaded)", "tag": "cupsd"})

fmt("android",
    {"t": "Not playing sound: effect type {int} is not supported", "tag": "AudioService"},
    {"t": "startAnimation begins", "tag": "WindowAnimator"}, {"t": "Screen frozen for +{int}ms due to Window{{hexid} u0 com.android.systemui}", "tag": "WindowManager", "lvl": "W"},
    {"t": "Unable to start service Intent { act=com.google.android.gms.{word} } U=0: not found", "tag": "ActivityManager", "lvl": "W"},
    {"t": "Killing {pid}:com.android.{word}/u0a{int} (adj 906): empty #{int}", "tag": "ActivityManager", "lvl": "I"},
    {"t": "ANR in com.tencent.mm (com.tencent.mm/.ui.LauncherUI)", "tag": "ActivityManager", "lvl": "E"},
    {"t": "Background start not allowed: service Intent { cmp=com.android.{word}/.SyncService } to com.android.{word}", "tag": "ActivityManager", "lvl": "W"},
    {"t": "updateWakeLockWorkSourceInternal: lock=1{int}, ws=WorkSource{{int}}", "lvl": "D"},
    {"t": "setBrightness: brightness={int}, mode=0", "tag": "DisplayPowerController"},
    {"t": "Unlocking screen by fingerprint", "tag": "KeyguardUpdateMonitor", "lvl": "I"},
    {"t": "onFingerprintAuthenticated", "tag": "KeyguardUpdateMonitor"},
    {"t": "WifiStateMachine: handleMessage: E msg.what={int}", "tag": "WifiStateMachine"},
    {"t": "CMD_START_SCAN source {int} txSuccessRate={float} rxSuccessRate={float} targetRoamBSSID=any RSSI={int}", "tag": "WifiStateMachine"},
    {"t": "Access denied finding property \"ro.vendor.{word}\"", "tag": "libc", "lvl": "W"},
    {"t": "GC_CONCURRENT freed {int}K, {int}% free {int}K/{int}K, paused {int}ms+{int}ms, total {int}ms", "tag": "art", "lvl": "I"},
    {"t": "Background concurrent copying GC freed {int}({size}) AllocSpace objects, {int}({size}) LOS objects, {int}% free, {size}/{size}, paused {int}us total {dur}", "tag": "art", "lvl": "I"})

fmt("bgl",
    {"t": "ciod: Message code {int} is not {int} or 4294967295", "tag": "APP", "lvl": "FATAL"},
    {"t": "ciod: Received signal {int}, code={int}, errno={int}, address=0x{hexid}", "tag": "APP", "lvl": "FATAL"},
    {"t": "ciod: pollControlDescriptors: Detected the debugger died.", "tag": "APP", "lvl": "FATAL"},
    "shutdown complete", "Kernel detected {int} integer alignment exceptions (iar 0x{hexid}, dear 0x{hexid})",
    "ddr: activating redundant bit steering: rank=0 symbol={int}", "ddr: excessive soft failures, consider replacing the card",
    {"t": "Error receiving packet on tree network, expecting type 57 instead of type {int}", "lvl": "FATAL"},
    {"t": "Error: unable to mount filesystem", "lvl": "FATAL"}, {"t": "Error loading /p/gb2/glosli/kernel/{word}: invalid or missing program image, No such file or directory", "tag": "APP", "lvl": "FATAL"},
    {"t": "NodeCard temperature sensor chip U{int} is not accessible", "tag": "MONITOR", "lvl": "FAILURE"},
    {"t": "BglIdoChip table has 2 IDOs with the same IP address ({ip})", "tag": "DISCOVERY", "lvl": "SEVERE"},
    {"t": "idoproxy communication failure: socket closed", "tag": "MMCS", "lvl": "FATAL"},
    {"t": "Ido packet timeout", "tag": "MMCS", "lvl": "ERROR"},
    {"t": "external input interrupt (unit=0x{hexid} bit=0x{hexid}): uncorrectable torus error", "lvl": "FATAL"},
    {"t": "wait state enable.................0", "lvl": "FATAL"}, {"t": "exception syndrome register: 0x{hexid}", "lvl": "FATAL"},
    {"t": "core configuration register: 0x{hexid}", "lvl": "FATAL"})

fmt("thunderbird",
    {"t": "Local disconnected: Connection closed.", "tag": "sshd[{pid}]"}, {"t": "connection lost: 'Connection closed.'", "tag": "sshd[{pid}]"},
    {"t": "data_thread() got not answer from any [Thunderbird_{word}] datasource", "tag": "/apps/x86_64/system/ganglia-3.0.1/sbin/gmetad[1682]"},
    "ib_sm.x[{pid}]: [ib_sm_sweep.c:{int}]: ********************** NEW SWEEP ********************",
    "ib_sm.x[{pid}]: [ib_sm_sweep.c:{int}]: No configuration change required",
    "ib_sm.x[{pid}]: [ib_sm_discovery.c:{int}]: Discovered {int} switches and {int} HCAs",
    "NFS: server {fqdn} not responding, still trying", "NFS: server {fqdn} OK", "eth{int}: link down", "eth{int}: link up, 1000Mbps, full-duplex, lpa 0x45E1",
    "Out of Memory: Killed process {pid} (python).", "ACPI: PCI Interrupt {pci}[A] -> GSI {int} (level, low) -> IRQ {int}",
    "kjournald starting.  Commit interval 5 seconds", "EXT3 FS on sda{int}, internal journal", "EXT3-fs: mounted filesystem with ordered data mode.",
    {"t": "Failed password for root from {ip} port {port} ssh2", "tag": "sshd[{pid}]"},
    {"t": "authentication failure; logname= uid=0 euid=0 tty=NODEVssh ruser= rhost={ip}  user=root", "tag": "sshd(pam_unix)[{pid}]"},
    {"t": "session opened for user {user} by (uid=0)", "tag": "sshd(pam_unix)[{pid}]"},
    {"t": "Received SIGHUP; restarting.", "tag": "syslogd"}, {"t": "restart.", "tag": "syslogd 1.4.1"})

fmt("openstack",
    {"t": "[instance: {uuid}] Instance destroyed successfully.", "tag": "nova.virt.libvirt.driver"},
    {"t": "[instance: {uuid}] Deletion of {path} complete", "tag": "nova.virt.libvirt.driver"},
    {"t": "[instance: {uuid}] Instance spawned successfully.", "tag": "nova.virt.libvirt.driver"},
    {"t": "Removable base files: {path}", "tag": "nova.virt.libvirt.imagecache"},
    {"t": "Base or swap file too young to remove: {path}", "tag": "nova.virt.libvirt.imagecache"},
    {"t": "Removing base or swap file: {path}", "tag": "nova.virt.libvirt.imagecache"},
    {"t": "Running periodic task ComputeManager._poll_volume_usage", "tag": "nova.compute.manager", "lvl": "DEBUG"},
    {"t": "Running periodic task ComputeManager._sync_power_states", "tag": "nova.compute.manager", "lvl": "DEBUG", "same": "E29"},
    {"t": "Running periodic task ComputeManager._heal_instance_info_cache", "tag": "nova.compute.manager", "lvl": "DEBUG", "same": "E29"},
    {"t": "While synchronizing instance power states, found {int} instances in the database and {int} instances on the hypervisor.", "tag": "nova.compute.manager", "lvl": "WARNING"},
    {"t": "[instance: {uuid}] Instance failed to spawn", "tag": "nova.compute.manager", "lvl": "ERROR"},
    {"t": "HTTP exception thrown: No instances found for any event", "tag": "nova.api.openstack.wsgi"},
    {"t": "{ip} \"GET /v2/{hexid}/servers/{uuid} HTTP/1.1\" status: {status} len: {int} time: {float}", "svc": "api", "tag": "nova.osapi_compute.wsgi.server", "same": "E1"},
    {"t": "{ip} \"POST /v2/{hexid}/servers HTTP/1.1\" status: {status} len: {int} time: {float}", "svc": "api", "tag": "nova.osapi_compute.wsgi.server", "same": "E2"})

fmt("apache",
    {"t": "[client {ip}] Invalid URI in request GET /{word} HTTP/1.1", "lvl": "error"},
    {"t": "[client {ip}] File does not exist: /var/www/html/scripts/{word}.pl", "lvl": "error"},
    {"t": "[client {ip}] (104)Connection reset by peer: core_output_filter: writing data to the network", "lvl": "info"},
    {"t": "mod_security/1.9dev2 configured", "lvl": "notice"}, {"t": "Graceful restart requested, doing restart", "lvl": "notice"},
    {"t": "Accept mutex: sysvsem (Default: sysvsem)", "lvl": "notice"})

fmt("proxifier",
    "{fqdn}:{port} error : Could not connect through proxy proxy.cse.cuhk.edu.hk:5070 - Proxy closed the connection unexpectedly.",
    "{fqdn}:{port} error : A connection attempt failed because the connected party did not properly respond after a period of time.",
    "Welcome to Proxifier v3.21", "Log file enabled.", "{fqdn}:{port} open through proxy proxy.cse.cuhk.edu.hk:5070 SOCKS5")

fmt("healthapp",
    {"t": "onReceive action: android.intent.action.SCREEN_OFF", "tag": "Step_LSC"},
    {"t": "onReceive action: android.intent.action.USER_PRESENT", "tag": "Step_LSC"},
    {"t": "getTodayTotalDetailSteps old steps={int}", "tag": "Step_SPUtils"},
    {"t": "sendGoalReachedNotification goal={int}", "tag": "Step_NotificationUtil"},
    {"t": "registerHealthDataObserver success", "tag": "HiH_HealthDataService"},
    {"t": "onStandStepChanged isStepCounterReady false", "tag": "Step_LSC"})

fmt("zookeeper",
    "Got user-level KeeperException when processing sessionid:0x{hexid} type:create cxid:0x{int} zxid:0x{hexid} txntype:-1 reqpath:n/a Error Path:/{word} Error:KeeperErrorCode = NodeExists for /{word}",
    "Reading snapshot /var/lib/zookeeper/version-2/snapshot.{hexid}", "My election bind port: /{ipport}",
    "Have smaller server identifier, so dropping the connection: ({int}, {int})",
    {"t": "Unexpected exception causing shutdown while sock still open", "lvl": "ERROR"},
    "Revalidating client: 0x{hexid}", "Server environment:java.version=1.7.0_{int}")

fmt("hpc",
    {"t": "clusterAddMember  (command {int})", "tag": "action", "state": "start"},
    {"t": "risBoot  (command {int})", "tag": "action", "state": "start"},
    {"t": "bootGenvmunix  (command {int})", "tag": "action", "state": "start"},
    {"t": "boot  (command {int})", "tag": "action", "state": "start"},
    {"t": "wait  (command {int})", "tag": "action", "state": "start"},
    {"t": "ambient={int}", "tag": "node", "state": "temp"},
    {"t": "inconsistent nodesets node-{int} 0x{hexid} != 0x{hexid} in ambient sensor", "tag": "node", "state": "temp"})

fmt("hdfs",
    {"t": "BLOCK* NameSystem.delete: {blk} is added to invalidSet of {ipport}", "tag": "dfs.FSNamesystem"},
    {"t": "Unexpected error trying to delete block {blk}. BlockInfo not found in volumeMap.", "tag": "dfs.FSDataset", "lvl": "WARN"},
    {"t": "PendingReplicationMonitor timed out block {blk}", "tag": "dfs.PendingReplicationBlocks", "lvl": "WARN"},
    {"t": "BLOCK* Removing block {blk} from neededReplications as it does not belong to any file.", "tag": "dfs.FSNamesystem"},
    {"t": "{ipport}:DataXceiver: java.io.IOException: Block {blk} is valid, and cannot be written to.", "tag": "dfs.DataNode", "lvl": "WARN"})

fmt("cri",
    "Started container trainer", "Created container trainer", "Killing container with a grace period of {int}s",
    "Pulled image \"nvcr.io/nvidia/pytorch:24.{int}-py3\" in {dur}", "Stopping container trainer",
    {"t": "Error syncing pod {uuid} (\"trainer-{int}_default({uuid})\"): CrashLoopBackOff", "lvl": "ERROR"},
    {"t": "OOMKilled: container trainer in pod trainer-{int} exceeded memory limit {size}", "lvl": "WARN"},
    "Volume mount succeeded for volume \"dshm\"", "Evicting pod default/trainer-{int}: node has memory pressure",
    "Node {host} status is now: NodeNotReady", "Node {host} status is now: NodeReady")

fmt("journald",
    {"t": "Started Kubernetes kubelet.", "tag": "systemd"}, {"t": "Failed to start NVIDIA Persistence Daemon.", "tag": "systemd", "prio": 3},
    {"t": "nvidia-persistenced.service: Main process exited, code=exited, status=1/FAILURE", "tag": "systemd", "prio": 4},
    {"t": "Failed to mount /scratch.", "tag": "systemd", "prio": 3}, {"t": "Journal started", "tag": "systemd-journald"},
    {"t": "Runtime Journal (/run/log/journal/{hexid}) is {size}, max {size}, {size} free.", "tag": "systemd-journald"},
    {"t": "Received client request to flush runtime journal.", "tag": "systemd-journald"},
    {"t": "E1130 12:00:00.000000    {int} pod_workers.go:{int}] \"Error syncing pod, skipping\" err=\"failed to \\\"StartContainer\\\"\" pod=\"default/trainer-{int}\"", "tag": "kubelet", "prio": 3},
    {"t": "I1130 12:00:00.000000    {int} kubelet.go:{int}] \"SyncLoop ADD\" source=\"api\" pods=[\"default/trainer-{int}\"]", "tag": "kubelet"})

fmt("glog",
    "Shutting down inference server", "Waiting for in-flight requests to complete", "Timeout {int}: Found {int} live models and {int} in-flight non-inference requests",
    {"t": "Unable to load model '{word}': version {int} is at UNAVAILABLE state", "lvl": "E"},
    "Metrics server started at 0.0.0.0:{port}", "CUDA memory pool is created on device {gpu} with size {int}",
    "Pinned memory pool is created at '0x{hexid}' with size {int}")

fmt("torch",
    {"t": "Using {int} GPUs for distributed training with backend nccl", "hdr": lambda: f"[rank{__import__('random').randrange(64)}]: "},
    {"t": "Reducer buckets have been rebuilt in this iteration.", "hdr": lambda: "[I reducer.cpp:1400] "},
    {"t": "[Rank {rank}] Some NCCL operations have failed or timed out. Due to the asynchronous nature of CUDA kernels, subsequent GPU operations might run on corrupted/incomplete data.", "hdr": _c10d("E", "{int}")},
    {"t": "Rendezvous timeout; worker group is not complete", "hdr": _elastic("ERROR")},
    {"t": "[default] Starting worker group", "hdr": lambda: "INFO:torch.distributed.elastic.agent.server.api:"},
    {"t": "Worker {int} (pid: {pid}) exited with code {int}", "hdr": _elastic("ERROR")})

fmt("access",
    "\"GET /api/v1/alerts?status=firing HTTP/1.1\" 200 {int} \"-\" \"grafana/10.{int}\"",
    "\"POST /api/v1/write HTTP/1.1\" 204 0 \"-\" \"Prometheus/2.{int}.0\"",
    "\"GET /login HTTP/1.1\" 302 {int} \"-\" \"Mozilla/5.0\"", "\"DELETE /api/v1/silences/{int} HTTP/1.1\" 200 {int} \"-\" \"gpuwatch/1.0\"",
    "\"GET /query?sql=SELECT HTTP/1.1\" 403 {int} \"-\" \"python-requests/2.{int}\"")

fmt("dmesg", *[
    "NVRM: Xid (PCI:{pci}): 94, pid={pid}, name=python, Contained: CE User Channel (0x{int}). RST: No, D-RST: No",
    "NVRM: Xid (PCI:{pci}): 63, pid={pid}, name=python, Row Remapper: New row ({int}) marked for remapping, reset gpu to activate.",
    "nvidia-fabricmanager: fabric manager daemon started", "IPv6: ADDRCONF(NETDEV_UP): ib{int}: link is not ready",
    "EDAC sbridge: Seeking for: PCI ID 8086:{int}", "Adding {int}k swap on /dev/nvme{int}n1p3.  Priority:-2 extents:1 across:{int}k SSFS",
])

