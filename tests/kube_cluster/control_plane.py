"""A real Kubernetes control plane for the `kubernetes` tests: etcd + kube-apiserver built from
source by `tests/kube_cluster/build.sh`, started on 127.0.0.1 ephemeral ports with generated
certificates, RBAC on, a kubeconfig for an admin (system:masters client certificate) and static
bearer tokens for unprivileged users (RBAC-forbidden tests). The real CRDs (KServe's
InferenceService, Argo Rollouts') are installed from the engines' Go modules.

There is no kubelet, scheduler or controller manager here: objects are stored, validated against
their schemas and served, which is what a deploy client talks to. The Argo Rollouts tests add
kube-controller-manager, kube-scheduler, kwok and Argo's own controller (argo_harness.py); KServe's,
which cannot run here, is stood in for by the tests themselves (see kserve_standin.py)."""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import os
import secrets
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "tests" / "kube_cluster" / "build.sh"


def build_control_plane() -> Path:
    """Build or reuse the binaries and CRDs; returns the cache directory (bin/, crds/)."""
    result = subprocess.run(["bash", str(BUILD)], cwd=ROOT, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"control plane build failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}")
    return Path(result.stdout.strip().splitlines()[-1])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _cert(subject: x509.Name, key: ec.EllipticCurvePrivateKey, issuer: x509.Name,
          issuer_key: ec.EllipticCurvePrivateKey, *, ca: bool = False,
          server: bool = False) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
            key_encipherment=False, data_encipherment=False, key_agreement=False, encipher_only=False,
            decipher_only=False), critical=True)
    else:
        usage = x509.ExtendedKeyUsageOID.SERVER_AUTH if server else x509.ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if server:
        builder = builder.add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@dataclass
class ControlPlane:
    directory: Path
    server: str = ""
    kubeconfig: Path = field(default_factory=Path)
    tokens: dict[str, str] = field(default_factory=dict)  # user name -> bearer token
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    cache: Path = field(default_factory=Path)  # the build cache (bin/, crds/, log/)

    def kubeconfig_for(self, user: str) -> Path:
        """A kubeconfig that authenticates as `user` (a static token, no RBAC grants by default)."""
        path = self.directory / f"kubeconfig-{user}"
        config = yaml.safe_load(self.kubeconfig.read_text())
        config["users"] = [{"name": "admin", "user": {"token": self.tokens[user]}}]
        path.write_text(yaml.safe_dump(config))
        return path

    def api_client(self, kubeconfig: Path | None = None):  # type: ignore[no-untyped-def]
        from kubernetes import config

        return config.new_client_from_config(config_file=str(kubeconfig or self.kubeconfig))

    def stop(self) -> None:
        running = [process for process in reversed(self.processes) if process.poll() is None]
        for process in running:  # all at once: the API server takes seconds to shut down
            process.terminate()
        for process in running:
            if process.poll() is None:
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def _wait_until(check, what: str, log: Path, process: subprocess.Popen[bytes],  # type: ignore[no-untyped-def]
                timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(0.25)
    raise RuntimeError(f"{what} not ready after {timeout:g}s:\n{log.read_text()[-3000:]}")


@contextlib.contextmanager
def running_control_plane(cache: Path, directory: Path) -> Iterator[ControlPlane]:
    directory.mkdir(parents=True, exist_ok=True)
    plane = ControlPlane(directory=directory, cache=cache)
    try:
        _start(plane, cache)
        yield plane
    finally:
        plane.stop()


def _start(plane: ControlPlane, cache: Path) -> None:
    d = plane.directory
    ca_key = _key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mlops-bot-test-ca")])
    ca = _cert(ca_name, ca_key, ca_name, ca_key, ca=True)
    server_key = _key()
    server = _cert(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]), server_key,
                   ca_name, ca_key, server=True)
    admin_key = _key()
    admin = _cert(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:masters"),
                             x509.NameAttribute(NameOID.COMMON_NAME, "admin")]), admin_key, ca_name, ca_key)
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    files = {"ca.crt": _pem(ca), "server.crt": _pem(server), "server.key": _pem_key(server_key),
             "admin.crt": _pem(admin), "admin.key": _pem_key(admin_key), "sa.key": _pem_key(sa_key),
             "sa.pub": sa_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                        serialization.PublicFormat.SubjectPublicKeyInfo)}
    for name, data in files.items():
        (d / name).write_bytes(data)
        os.chmod(d / name, 0o600)
    plane.tokens = {"nobody": secrets.token_hex(16), "deployer": secrets.token_hex(16)}
    (d / "tokens.csv").write_text("".join(f"{token},{user},{user}\n" for user, token in plane.tokens.items()))

    etcd_log = d / "etcd.log"
    client_port, peer_port = _free_port(), _free_port()
    etcd = subprocess.Popen(
        [str(cache / "bin" / "etcd"), "--name", "default", "--data-dir", str(d / "etcd"),
         "--listen-client-urls", f"http://127.0.0.1:{client_port}",
         "--advertise-client-urls", f"http://127.0.0.1:{client_port}",
         "--listen-peer-urls", f"http://127.0.0.1:{peer_port}",
         "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer_port}",
         "--initial-cluster", f"default=http://127.0.0.1:{peer_port}",
         "--unsafe-no-fsync", "--quota-backend-bytes", str(512 * 1024 * 1024), "--log-level", "warn"],
        stdout=etcd_log.open("wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    plane.processes.append(etcd)
    import httpx

    _wait_until(lambda: httpx.get(f"http://127.0.0.1:{client_port}/health", timeout=2,
                                  trust_env=False).status_code == 200,
                "etcd", etcd_log, etcd)

    api_log = d / "kube-apiserver.log"
    port = _free_port()
    api = subprocess.Popen(
        [str(cache / "bin" / "kube-apiserver"),
         "--etcd-servers", f"http://127.0.0.1:{client_port}",
         "--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1", "--secure-port", str(port),
         "--cert-dir", str(d / "certs"),
         "--tls-cert-file", str(d / "server.crt"), "--tls-private-key-file", str(d / "server.key"),
         "--client-ca-file", str(d / "ca.crt"), "--token-auth-file", str(d / "tokens.csv"),
         "--service-account-issuer", "https://kubernetes.default.svc",
         "--service-account-key-file", str(d / "sa.pub"),
         "--service-account-signing-key-file", str(d / "sa.key"),
         "--service-cluster-ip-range", "10.0.0.0/24", "--authorization-mode", "RBAC",
         "--disable-admission-plugins", "ServiceAccount", "--allow-privileged=true",
         "--endpoint-reconciler-type", "none", "--v", "1"],
        stdout=api_log.open("wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    plane.processes.append(api)
    plane.server = f"https://127.0.0.1:{port}"
    plane.kubeconfig = d / "kubeconfig"
    plane.kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "test",
        "clusters": [{"name": "test", "cluster": {"server": plane.server,
                                                  "certificate-authority": str(d / "ca.crt")}}],
        "users": [{"name": "admin", "user": {"client-certificate": str(d / "admin.crt"),
                                             "client-key": str(d / "admin.key")}}],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": "admin",
                                                  "namespace": "default"}}],
    }))

    tls = ssl.create_default_context(cafile=str(d / "ca.crt"))
    tls.load_cert_chain(str(d / "admin.crt"), str(d / "admin.key"))

    def ready() -> bool:
        return httpx.get(f"{plane.server}/readyz", verify=tls, timeout=5, trust_env=False).status_code == 200

    _wait_until(ready, "kube-apiserver", api_log, api, timeout=180)


def _crd_documents(crd_file: Path) -> list[dict[str, Any]]:
    """The CustomResourceDefinitions in `crd_file`, through `<file>.json` beside it (written
    atomically on first use, re-made when the YAML is newer)."""
    import json

    copy = crd_file.with_name(crd_file.name + ".json")
    if copy.is_file() and copy.stat().st_mtime >= crd_file.stat().st_mtime:
        with contextlib.suppress(ValueError):
            documents: list[dict[str, Any]] = json.loads(copy.read_text())
            return documents
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    documents = [document for document in yaml.load_all(crd_file.read_text(), Loader=loader)
                 if document and document.get("kind") == "CustomResourceDefinition"]
    with contextlib.suppress(OSError):  # a read-only cache: parse again next time
        partial = copy.with_name(f"{copy.name}.{os.getpid()}.tmp")
        partial.write_text(json.dumps(documents))
        os.replace(partial, copy)
    return documents


def install_crds(plane: ControlPlane, *crd_files: Path) -> list[str]:
    """Create every CustomResourceDefinition in `crd_files` and wait until each is Established.

    The files are large (KServe's CRD alone is ~1 MB of YAML): they are read from a JSON copy made
    on first use (parsing the YAML takes seconds of CPU on every run), sent side by side, and
    neither the answers nor the polls become the client's model objects (that alone took seconds);
    each CRD is polled every 0.1 s."""
    import json
    from concurrent.futures import ThreadPoolExecutor

    from kubernetes import client

    documents = [document for crd_file in crd_files for document in _crd_documents(crd_file)]
    api = client.ApiextensionsV1Api(plane.api_client())
    with ThreadPoolExecutor(max_workers=len(documents) or 1) as pool:
        list(pool.map(lambda body: api.create_custom_resource_definition(body, _preload_content=False),
                      documents))
    names = [document["metadata"]["name"] for document in documents]
    deadline = time.monotonic() + 60
    for name in names:
        while True:
            crd = json.loads(api.read_custom_resource_definition(name, _preload_content=False).data)
            conditions = {c["type"]: c["status"] for c in (crd.get("status") or {}).get("conditions") or []}
            if conditions.get("Established") == "True":
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"CRD {name} not established: {conditions}")
            time.sleep(0.1)
    return names
