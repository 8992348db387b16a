"""rdma.py — what migperf checks before an rdma: run (--transport rdma):
an RDMA device on this host when a peer runs here, and the address the
destination listens on (--rdma-host; rdma_cm binds to the IP address of an
RDMA-capable interface, never lo). The peers report everything else with
their own "RDMA ERROR: ..." messages. Driver thread only.
"""
import glob

SYSFS = "/sys/class/infiniband"


def devices():
    """The RDMA devices the kernel lists (mlx5_0, rxe0, ...)."""
    return sorted(p.rsplit("/", 1)[1] for p in glob.glob(SYSFS + "/*"))


def preflight(scen, host, local_peer):
    """Raises ValueError (migperf exits 2) when an rdma: scenario cannot
    run: no --rdma-host, or no RDMA device while a peer runs here."""
    if scen["transport"] != "rdma":
        return
    if not host:
        raise ValueError(
            "--transport rdma needs --rdma-host ADDR: the IP address of "
            "the destination's RDMA interface (a RoCE/iWARP NIC, an "
            "InfiniBand IPoIB port, or the netdev soft-RoCE is bound "
            "to); rdma_cm does not work over lo")
    if local_peer and not devices():
        raise ValueError(
            "--transport rdma: no RDMA device on this host (%s is empty). "
            "Use a host with an RDMA NIC, or soft-RoCE for a functional "
            "check only: modprobe rdma_rxe; rdma link add rxe0 type rxe "
            "netdev IFACE" % SYSFS)


def uri(host, port):
    """rdma:HOST:PORT, brackets around an IPv6 address."""
    if ":" in host and not host.startswith("["):
        host = "[%s]" % host
    return "rdma:%s:%d" % (host, port)
