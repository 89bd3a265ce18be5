"""The session head the job tests share is what its fixture promises: token auth on, loopback only."""

from __future__ import annotations

import ipaddress

import psutil
import pytest

pytestmark = pytest.mark.ray


def test_head_refuses_a_client_without_the_token(ray_head):
    ok = ray_head.ray("job", "list", "--address", ray_head.address)
    assert ok.returncode == 0, ok.stderr[-2000:]
    wrong = {**ray_head.env, "RAY_AUTH_TOKEN": "0" * 32}
    refused = ray_head.ray("job", "list", "--address", ray_head.address, env=wrong)
    assert refused.returncode != 0
    assert "nauthorized" in refused.stdout + refused.stderr or "uthentication" in refused.stdout + refused.stderr


def _is_loopback(ip: str) -> bool:
    addr = ipaddress.ip_address(ip.split("%")[0])
    mapped = getattr(addr, "ipv4_mapped", None)  # ::ffff:127.0.0.1 is loopback too
    return (mapped or addr).is_loopback


def test_head_listens_on_loopback_only(ray_head):
    procs = ray_head.processes()
    assert procs, "no process of the head found under its temp dir"
    listening = []
    for proc in procs:
        try:
            conns = proc.net_connections(kind="inet")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        listening += [c.laddr for c in conns if c.status == psutil.CONN_LISTEN]
    assert listening, "the head listens on no TCP port"
    exposed = [a for a in listening if not _is_loopback(a.ip)]
    assert not exposed, f"head daemons listen beyond loopback: {exposed}"
