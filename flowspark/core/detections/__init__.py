"""Detections: rules over classified flows, one module per family, each finding with evidence.

    scans      port_probe (one of our ports probed by many Internet peers), vertical_scan (one peer, many
               ports of one host), horizontal_sweep (one peer, one port of many hosts)
    access     brute_force (many short connections to SSH, RDP or WinRM from one peer)
    outbound   outbound_dos (one local source, a very high packet rate of small packets to one target),
               spam_bot (outbound SMTP to many peers)
    anomaly    unusual_port (a server port the host never used in its history), traffic_volume (an hour's
               upload far above the host's baseline)
    beacon     beaconing (small, regular calls from few hosts to one peer)
    lists      malicious_ip, tor, mining_pool, blackhole (addresses on the loaded intel lists)

Every rule is a pure ``DataFrame -> DataFrame`` over the oriented flows of
:func:`flowspark.core.reports.hunt_flows` plus a ``day`` column, returns rows of ACTIVITY (one per
detection, subject and day) and runs no action. Thresholds live in :class:`Thresholds`
(flowspark.core.detections.base), each with the reason for its default. :mod:`.findings` turns the daily
activity into findings (episodes with stable ids), :mod:`.engine` runs them all.

This package's ``__init__`` imports nothing: flowspark.core.reports uses the interval measures of
:mod:`.beacon`, and the families import reports.
"""
