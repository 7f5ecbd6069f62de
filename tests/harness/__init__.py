"""End-to-end test harness for the Rust toolbox daemon.

* :mod:`harness.daemon` – start/stop the daemon binary with an isolated HOME, cwd and log file.
* :mod:`harness.proxy`  – loopback stand-in for Daytona's toolbox proxy (strips ``/{sandboxId}``).
* :mod:`harness.sdk`    – build real SDK ``Sandbox`` objects / generated clients without a
  control plane.
* :mod:`harness.http`   – tiny raw HTTP helper (no redirect following, no header magic).
"""
