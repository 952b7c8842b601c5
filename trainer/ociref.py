"""OCI helpers shared by train.py and publish_dataset.py: references, plain-HTTP
policy, digest-verified manifest and blob reads, and a checked digest for a push."""

from __future__ import annotations

import hashlib
import ipaddress
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import oras.container
import oras.provider
import requests

# Every manifest type a dataset reference may resolve to; the registry picks.
MANIFEST_ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    ]
)
INDEX_TYPES = {
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
}
DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
# The one name DESIGN gives the embedded registry; loopback is allowed for tests.
PLAIN_HTTP_HOSTS = {"registry.local:5000"}


class TrainerError(Exception):
    """A failure reported as one clear line, without a traceback."""


def run_cli(main: Callable[[list[str]], int]) -> None:
    """Runs a program's main; a TrainerError becomes one `error:` line and exit 1."""
    try:
        sys.exit(main(sys.argv[1:]))
    except TrainerError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)


@dataclass(frozen=True)
class Reference:
    registry: str
    repository: str
    tag: str | None
    digest: str | None

    @property
    def url(self) -> str:
        """registry/repository, without tag or digest."""
        return f"{self.registry}/{self.repository}"


def parse_reference(ref: str) -> Reference:
    """Splits registry/repo[:tag][@sha256:...]; the registry part is required."""
    name, _, digest = ref.partition("@")
    if digest and not DIGEST_RE.match(digest):
        raise TrainerError(f"{ref}: digest must be sha256:<64 hex>")
    slash = name.find("/")
    if slash <= 0:
        raise TrainerError(f"{ref}: expected registry/repository[:tag][@digest]")
    registry, path = name[:slash], name[slash + 1 :]
    repository, tag = path, None
    colon = path.rfind(":")
    if colon != -1:
        repository, tag = path[:colon], path[colon + 1 :]
    if not repository or not re.match(r"^[a-z0-9]+([._/-]+[a-z0-9]+)*$", repository):
        raise TrainerError(f"{ref}: invalid repository name {repository!r}")
    if tag is not None and not re.match(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", tag):
        raise TrainerError(f"{ref}: invalid tag {tag!r}")
    return Reference(registry, repository, tag, digest or None)


def plain_http_allowed(registry: str) -> bool:
    host = registry.rsplit(":", 1)[0] if not registry.startswith("[") else registry[1:].split("]")[0]
    if registry in PLAIN_HTTP_HOSTS or host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def make_registry(ref: Reference, plain_http: bool, cls: type = oras.provider.Registry):
    """An oras client for ref's registry: plain HTTP only when asked for and the
    host is one DESIGN allows (registry.local:5000, loopback); HTTPS otherwise."""
    return cls(hostname=ref.registry, insecure=plain_http and plain_http_allowed(ref.registry))


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _container(registry: oras.provider.Registry, ref: Reference, target: str) -> oras.container.Container:
    container = registry.get_container(f"{ref.url}:{target}" if not target.startswith("sha256:") else f"{ref.url}@{target}")
    registry.auth.load_configs(container)  # picks up ~/.docker/config.json credentials
    return container


def fetch_manifest(registry: oras.provider.Registry, ref: Reference) -> tuple[str, dict, bytes]:
    """GETs the manifest for ref's digest or tag and returns (digest, manifest, bytes).
    The digest is computed from the bytes received; a digest reference or the
    registry's Docker-Content-Digest header must agree with it."""
    target = ref.digest or ref.tag or "latest"
    container = _container(registry, ref, target)
    url = f"{registry.prefix}://{container.registry}/v2/{container.api_prefix}/manifests/{target}"
    try:
        response = registry.do_request(url, "GET", headers={"Accept": MANIFEST_ACCEPT})
    except requests.RequestException as err:
        raise TrainerError(f"{ref.url}:{target}: cannot reach the registry: {err}") from None
    if response.status_code == 404:
        raise TrainerError(f"{ref.url}@{target}: no such manifest in the registry (404)" if ref.digest else f"{ref.url}:{target}: no such manifest in the registry (404)")
    if response.status_code != 200:
        raise TrainerError(f"{ref.url}:{target}: manifest request failed with HTTP {response.status_code}")
    body = response.content
    digest = sha256_digest(body)
    if ref.digest and digest != ref.digest:
        raise TrainerError(f"{ref.url}: manifest bytes hash to {digest}, not the requested {ref.digest}")
    header = response.headers.get("Docker-Content-Digest")
    if header and header != digest:
        raise TrainerError(f"{ref.url}:{target}: registry says {header}, manifest bytes hash to {digest}")
    return digest, _json(body, f"{ref.url}@{digest}"), body


def _json(body: bytes, what: str) -> dict:
    import json

    try:
        value = json.loads(body)
    except ValueError:
        raise TrainerError(f"{what}: manifest is not JSON") from None
    if not isinstance(value, dict):
        raise TrainerError(f"{what}: manifest is not a JSON object")
    return value


def download_blob(registry: oras.provider.Registry, ref: Reference, digest: str, size: int | None, dest: Path) -> None:
    """Streams a blob to dest and fails unless its sha256 (and size) match the descriptor."""
    if not DIGEST_RE.match(digest):
        raise TrainerError(f"{ref.url}: layer digest {digest!r} is not sha256:<64 hex>")
    container = _container(registry, ref, digest)
    url = f"{registry.prefix}://{container.registry}/v2/{container.api_prefix}/blobs/{digest}"
    response = registry.do_request(url, "GET", stream=True)
    if response.status_code != 200:
        raise TrainerError(f"{ref.url}: blob {digest} request failed with HTTP {response.status_code}")
    hasher, length = hashlib.sha256(), 0
    with dest.open("wb") as out:
        for chunk in response.iter_content(chunk_size=1 << 16):
            hasher.update(chunk)
            length += len(chunk)
            out.write(chunk)
    got = "sha256:" + hasher.hexdigest()
    if got != digest:
        raise TrainerError(f"{ref.url}: blob {digest} downloaded with sha256 {got}")
    if size is not None and length != size:
        raise TrainerError(f"{ref.url}: blob {digest} is {length} bytes, descriptor says {size}")


def pushed_manifest_digest(response: requests.Response, what: str) -> str:
    """The digest of the manifest bytes the push sent (oras PUTs them as the request
    body), checked against the registry's Docker-Content-Digest when it sends one."""
    if response.status_code not in (200, 201):
        raise TrainerError(f"{what}: manifest push failed with HTTP {response.status_code}")
    body = response.request.body
    if isinstance(body, str):
        body = body.encode("utf-8")
    if not isinstance(body, bytes) or not body:
        raise TrainerError(f"{what}: the push response carries no manifest bytes to digest")
    digest = sha256_digest(body)
    header = response.headers.get("Docker-Content-Digest")
    if header and header != digest:
        raise TrainerError(f"{what}: registry stored {header}, the pushed manifest hashes to {digest}")
    return digest
