"""The built-in formats: the 16 Loghub systems, Spirit, and HTTP access logs.

Header layouts follow the Loghub structured files (../shared/data/loghub_2k shows each one).
Logs whose lines carry no year get the year of the Loghub collection they come from; that
year is an assumption, stated here and in ``logsieve formats``.
"""

from __future__ import annotations

from logsieve.formats.base import LogFormat, Timestamp

HDFS_BLOCK = r"blk_-?\d+"

# Field shapes of HTTP access logs: a line whose fields do not fit is malformed, not a
# request (the Kaggle webLog CSV holds shell output such as "chmod:,cannot,'a.out':,No").
IP_ADDRESS = r"\d{1,3}(?:\.\d{1,3}){3}|[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:%\w+)?"
HTTP_STATUS = r"\d{3}"
HTTP_TIME = r"\[?\d{1,2}/[A-Za-z]{3}/\d{4}:\d{2}:\d{2}:\d{2}(?: [+-]\d{4})?\]?"
CLF_FIELDS = (
    ("Host", r"[^\s\[\]\"]+"),
    ("Ident", r"\S+"),
    ("Time", r"[^\]]+"),
    ("Status", HTTP_STATUS),
    ("Size", r"\d+|-"),
)

_BUILTIN: tuple[LogFormat, ...] = (
    LogFormat(
        "hdfs",
        "<Date> <Time> <Pid> <Level> <Component>: <Content>",
        "Hadoop Distributed File System (Loghub HDFS_v1); sessions are block ids",
        Timestamp(("Date", "Time"), "%y%m%d %H%M%S"),
        session_pattern=HDFS_BLOCK,
        example=(
            "081109 203615 148 INFO dfs.DataNode$PacketResponder: PacketResponder 1 for block "
            "blk_38865049064139660 terminating"
        ),
    ),
    LogFormat(
        "hadoop",
        r"<Date> <Time> <Level> \[<Process>\] <Component>: <Content>",
        "Hadoop MapReduce jobs (Loghub Hadoop)",
        Timestamp(("Date", "Time"), "%Y-%m-%d %H:%M:%S,%3f"),
        example=(
            "2015-10-18 18:01:47,978 INFO [main] org.apache.hadoop.mapreduce.v2.app.MRAppMaster: "
            "Created MRAppMaster"
        ),
    ),
    LogFormat(
        "spark",
        "<Date> <Time> <Level> <Component>: <Content>",
        "Apache Spark (Loghub Spark)",
        Timestamp(("Date", "Time"), "%y/%m/%d %H:%M:%S"),
        example=(
            "17/06/09 20:10:40 INFO executor.CoarseGrainedExecutorBackend: Registered signal "
            "handlers"
        ),
    ),
    LogFormat(
        "zookeeper",
        r"<Date> <Time> - <Level>  \[<Node>:<Component>@<Id>\] - <Content>",
        "Apache ZooKeeper (Loghub Zookeeper)",
        Timestamp(("Date", "Time"), "%Y-%m-%d %H:%M:%S,%3f"),
        example=(
            "2015-07-29 17:41:44,747 - INFO  "
            "[QuorumPeer[myid=1]/0:0:0:0:0:0:0:0:2181:FastLeaderElection@774] - Notification time "
            "out: 3200"
        ),
    ),
    LogFormat(
        "bgl",
        (
            "<Label> <Timestamp> <Date> <Node> <Time> <NodeRepeat> <Type> <Component> <Level> "
            "<Content>"
        ),
        "Blue Gene/L supercomputer (Loghub BGL); '-' marks normal lines, an alert tag anomalies",
        Timestamp(("Timestamp",), "epoch"),
        label_field="Label",
        example=(
            "- 1117838570 2005.06.03 R02-M1-N0-C:J12-U11 2005-06-03-15.42.50.675872 "
            "R02-M1-N0-C:J12-U11 RAS KERNEL INFO instruction cache parity error corrected"
        ),
    ),
    LogFormat(
        "hpc",
        "<LogId> <Node> <Component> <State> <Time> <Flag> <Content>",
        "High-performance cluster (Loghub HPC)",
        Timestamp(("Time",), "epoch"),
        example=(
            "134681 node-246 unix.hw state_change.unavailable 1077804742 1 Component State Change: "
            "..."
        ),
    ),
    LogFormat(
        "thunderbird",
        (
            r"<Label> <Timestamp> <Date> <User> <Month> <Day> <Time> <Location> "
            r"<Component>(\[<PID>\])?: <Content>"
        ),
        "Thunderbird supercomputer (Loghub Thunderbird); '-' marks normal lines",
        Timestamp(("Timestamp",), "epoch"),
        label_field="Label",
        example=(
            "- 1131566461 2005.11.09 dn228 Nov 9 12:01:01 dn228/dn228 crond(pam_unix)[2915]: "
            "session closed for user root"
        ),
    ),
    LogFormat(
        "spirit",
        (
            r"<Label> <Timestamp> <Date> <User> <Month> <Day> <Time> <Location> "
            r"<Component>(\[<PID>\])?: <Content>"
        ),
        "Spirit supercomputer (same layout as Thunderbird); '-' marks normal lines",
        Timestamp(("Timestamp",), "epoch"),
        preset="thunderbird",
        label_field="Label",
    ),
    LogFormat(
        "windows",
        "<Date> <Time>, <Level>                  <Component>    <Content>",
        "Windows CBS logs (Loghub Windows)",
        Timestamp(("Date", "Time"), "%Y-%m-%d %H:%M:%S"),
    ),
    LogFormat(
        "linux",
        r"<Month> <Date> <Time> <Level> <Component>(\[<PID>\])?: <Content>",
        "Linux syslog (Loghub Linux); lines carry no year, 2005 assumed",
        Timestamp(("Month", "Date", "Time"), "%b %d %H:%M:%S", year=2005),
    ),
    LogFormat(
        "android",
        "<Date> <Time>  <Pid>  <Tid> <Level> <Component>: <Content>",
        "Android framework logs (Loghub Android); lines carry no year, 2017 assumed",
        Timestamp(("Date", "Time"), "%m-%d %H:%M:%S%.3f", year=2017),
    ),
    LogFormat(
        "healthapp",
        r"<Time>\|<Component>\|<Pid>\|<Content>",
        "Health app on Android (Loghub HealthApp)",
        Timestamp(
            ("Time",),
            (
                r"regex:^(?P<Y>\d{4})(?P<m>\d{2})(?P<d>\d{2})-(?P<H>\d{1,2}):(?P<M>\d{1,2}):"
                r"(?P<S>\d{1,2}):(?P<ms>\d{1,3})$"
            ),
        ),
    ),
    LogFormat(
        "apache",
        r"\[<Time>\] \[<Level>\] <Content>",
        "Apache HTTP server error log (Loghub Apache)",
        Timestamp(("Time",), "%a %b %d %H:%M:%S %Y"),
    ),
    LogFormat(
        "proxifier",
        r"\[<Time>\] <Program> - <Content>",
        "Proxifier proxy client (Loghub Proxifier); lines carry no year, 2016 assumed",
        Timestamp(("Time",), "%m.%d %H:%M:%S", year=2016),
    ),
    LogFormat(
        "openssh",
        r"<Date> <Day> <Time> <Component> sshd\[<Pid>\]: <Content>",
        "OpenSSH server (Loghub OpenSSH); lines carry no year, 2017 assumed",
        Timestamp(("Date", "Day", "Time"), "%b %d %H:%M:%S", year=2017),
    ),
    LogFormat(
        "openstack",
        r"<Logrecord> <Date> <Time> <Pid> <Level> <Component> \[<ADDR>\] <Content>",
        "OpenStack Nova (Loghub OpenStack)",
        Timestamp(("Date", "Time"), "%Y-%m-%d %H:%M:%S%.3f"),
    ),
    LogFormat(
        "mac",
        r"<Month>  <Date> <Time> <User> <Component>\[<PID>\]( \(<Address>\))?: <Content>",
        "macOS system log (Loghub Mac); lines carry no year, 2017 assumed",
        Timestamp(("Month", "Date", "Time"), "%b %d %H:%M:%S", year=2017),
    ),
    LogFormat(
        "weblog",
        r'"?<IP>"?,"?<Time>"?,"?<Content>"?,"?<Status>"?',
        "HTTP access log as CSV (IP,Time,URL,Status; the Kaggle webLog set)",
        Timestamp(("Time",), "[%d/%b/%Y:%H:%M:%S"),
        preset="http",
        skip_pattern=r"^IP,Time,URL,Sta",
        example="10.128.2.1,[29/Nov/2017:06:58:55,GET /login.php HTTP/1.1,200",
        field_patterns=(("IP", IP_ADDRESS), ("Time", HTTP_TIME), ("Status", HTTP_STATUS)),
    ),
    LogFormat(
        "clf",
        r'<Host> <Ident> <User> \[<Time>\] "<Content>" <Status> <Size>',
        "HTTP access log, Common Log Format",
        Timestamp(("Time",), "%d/%b/%Y:%H:%M:%S %z"),
        preset="http",
        example=(
            '127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326'
        ),
        field_patterns=CLF_FIELDS,
    ),
    LogFormat(
        "combined",
        r'<Host> <Ident> <User> \[<Time>\] "<Content>" <Status> <Size> "<Referer>" "<Agent>"',
        "HTTP access log, Combined Log Format (CLF plus referer and user agent)",
        Timestamp(("Time",), "%d/%b/%Y:%H:%M:%S %z"),
        preset="http",
        field_patterns=CLF_FIELDS,
    ),
)

BUILTIN_FORMATS: dict[str, LogFormat] = {f.name: f for f in _BUILTIN}
