"""Postcopy over TLS against QEMU 10.0, both ways: the postcopy interop
suites again with tls-creds set (migd -> QEMU over x509 and PSK: preempt,
a break + recovery with new TLS sessions; QEMU -> migd over PSK). Part of
the long matrix (INTEROP_FULL=1, make check-long); migd <-> migd postcopy
over TLS runs in make check (tests/system/test_postcopy_tls.py)."""
import os
import shutil
import subprocess
import tempfile
import unittest

from tests.interop import test_interop_postcopy_out as out
from tests.interop.qemutest import full_run, set_params

CERTS = None


def setUpModule():
    global CERTS
    CERTS = tempfile.mkdtemp(prefix="migd-pctls-")
    gen = os.path.join(os.path.dirname(out.__file__), "..", "tls",
                       "gen-certs.sh")
    subprocess.run(["bash", gen, CERTS], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def tearDownModule():
    shutil.rmtree(CERTS, ignore_errors=True)


def creds(kind, endpoint):
    sub = "psk" if kind == "psk" else endpoint
    return {"qom-type": "tls-creds-" + kind, "id": "tls0",
            "dir": os.path.join(CERTS, sub), "endpoint": endpoint}


@unittest.skipUnless(full_run(), "INTEROP_FULL=1 (make check-long)")
class TLSMixin:
    kind = "x509"

    def start_pair(self, preempt=False, extra_src=(), dst_caps=None):
        dst, qd, src, qs = super().start_pair(preempt, extra_src, dst_caps)
        qs.cmd("object-add", creds(self.kind, "client"))
        qd.cmd("object-add", creds(self.kind, "server"))
        set_params(qs, tls_creds="tls0")
        set_params(qd, tls_creds="tls0")
        return dst, qd, src, qs


class X509(TLSMixin, out.PostcopyToQemuTest):
    pass


class PSK(TLSMixin, out.PostcopyToQemuTest):
    kind = "psk"




from tests.interop import test_interop_postcopy_in as pin  # noqa: E402


@unittest.skipUnless(full_run(), "INTEROP_FULL=1 (make check-long)")
class InPSK(pin.PostcopyIn):
    """QEMU 10.0 source -> migd destination over TLS (PSK): recovery opens
    new TLS sessions on migd's side (incoming_tls.c, late connections)."""

    def start_pair(self, *a, **kw):
        start = kw.pop("start", True)
        qs, qd = super().start_pair(*a, start=False, **kw)
        qs.cmd("object-add", creds("psk", "client"))
        qd.cmd("object-add", creds("psk", "server"))
        set_params(qs, tls_creds="tls0")
        set_params(qd, tls_creds="tls0")
        if start:
            qs.cmd("cont")
        return qs, qd

