"""Certificates for the TLS tests, made at test time with the openssl CLI: a test CA, a
server certificate for 127.0.0.1/localhost, and client certificates with a chosen CN.
Nothing here is a secret worth keeping: every run makes new ones in a temporary directory."""

import os
import subprocess
from pathlib import Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, timeout=60,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


class TestCertificates:
    """ca.crt signs server.crt (CN=localhost, SAN 127.0.0.1 and localhost) and each
    client_<cn>.crt; other_ca.crt signs nothing here, for wrong-CA tests. Keys are 0600,
    as libpq and PostgreSQL insist."""

    def __init__(self, directory: Path):
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.ca_cert, self.ca_key = self._make_ca("ca", "sluice test CA")
        self.other_ca_cert, _ = self._make_ca("other_ca", "some other CA")
        self.server_cert, self.server_key = self._sign(
            "server", "localhost", san="subjectAltName=IP:127.0.0.1,DNS:localhost")

    def _make_ca(self, name: str, cn: str) -> tuple[Path, Path]:
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "2",
                 "-subj", f"/CN={cn}", "-keyout", f"{name}.key", "-out", f"{name}.crt",
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=self.dir)
        os.chmod(self.dir / f"{name}.key", 0o600)
        return self.dir / f"{name}.crt", self.dir / f"{name}.key"

    def _sign(self, name: str, cn: str, san: str | None = None) -> tuple[Path, Path]:
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={cn}",
                 "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=self.dir)
        ext = self.dir / f"{name}.ext"
        ext.write_text((san + "\n") if san else "basicConstraints=CA:FALSE\n")
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", self.ca_cert.name,
                 "-CAkey", self.ca_key.name, "-CAcreateserial", "-days", "2", "-sha256",
                 "-extfile", ext.name, "-out", f"{name}.crt", cwd=self.dir)
        os.chmod(self.dir / f"{name}.key", 0o600)
        return self.dir / f"{name}.crt", self.dir / f"{name}.key"

    def client(self, cn: str) -> tuple[Path, Path]:
        """A client certificate and key with CN `cn`, signed by the test CA."""
        return self._sign(f"client_{cn}", cn)
