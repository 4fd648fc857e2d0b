"""Test hosts on one machine: network namespaces on a bridge the test makes (needs root and
`ip`, iproute2). The services listen on the bridge's address in the root namespace; each host
reaches them over its own veth link, and a partition takes that link down.

    with Bridge() as net:
        redis = PrivateRedis(tmp, host=net.address)
        a = net.host("a")                   # a namespace with its own address
        a.popen([...])                      # a process on that host
        a.cut(); a.heal()                   # the host's link down, and up again
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import pytest

from tests.conftest import IN_CI


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30,
                          check=check)


def need_namespaces() -> None:
    """Skip (fail in CI, which runs as root) where network namespaces cannot be made."""
    why = None
    if os.geteuid() != 0:
        why = "network namespaces need root"
    elif shutil.which("ip") is None:
        why = "iproute2 (ip) is not installed"
    if why:
        if IN_CI:
            pytest.fail(why)
        pytest.skip(why)


class Host:
    """One test host: a network namespace with a veth link to the bridge."""

    def __init__(self, bridge: Bridge, name: str, index: int) -> None:
        self.bridge, self.name = bridge, f"{bridge.tag}{name}"
        self.address = f"{bridge.prefix}.{index}"
        self.link = f"{bridge.tag}v{index}"  # the root side of the veth pair
        _ip("netns", "add", self.name)
        _ip("link", "add", self.link, "type", "veth", "peer", "name", f"{self.link}p")
        _ip("link", "set", f"{self.link}p", "netns", self.name)
        _ip("link", "set", self.link, "master", bridge.name, "up")
        inside = ["netns", "exec", self.name, "ip"]
        _ip(*inside, "link", "set", "lo", "up")
        _ip(*inside, "link", "set", f"{self.link}p", "name", "eth0")
        _ip(*inside, "addr", "add", f"{self.address}/24", "dev", "eth0")
        _ip(*inside, "link", "set", "eth0", "up")

    def command(self, argv: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.name, *argv]

    def popen(self, argv: Sequence[str], log: IO[bytes], **kwargs: Any
              ) -> subprocess.Popen[bytes]:
        return subprocess.Popen(self.command(argv), stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, **kwargs)

    def cut(self) -> None:
        """A partition: the host's link goes down; nothing it sends or is sent arrives."""
        _ip("link", "set", self.link, "down")

    def heal(self) -> None:
        _ip("link", "set", self.link, "up")

    def remove(self) -> None:
        _ip("link", "del", self.link, check=False)
        _ip("netns", "del", self.name, check=False)


class Bridge:
    """A bridge in the root namespace with an address of its own (the services' host)."""

    def __init__(self) -> None:
        need_namespaces()
        self.tag = f"ag{random.randrange(16 ** 4):04x}"
        self.name = f"{self.tag}br"
        self.prefix = f"10.{random.randrange(100, 250)}.{random.randrange(0, 250)}"
        self.address = f"{self.prefix}.1"
        self.hosts: list[Host] = []

    def __enter__(self) -> Bridge:
        _ip("link", "add", self.name, "type", "bridge")
        _ip("addr", "add", f"{self.address}/24", "dev", self.name)
        _ip("link", "set", self.name, "up")
        return self

    def host(self, name: str) -> Host:
        found = Host(self, name, len(self.hosts) + 2)
        self.hosts.append(found)
        return found

    def __exit__(self, *exc: object) -> None:
        for host in self.hosts:
            host.remove()
        _ip("link", "del", self.name, check=False)


def logged(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""
