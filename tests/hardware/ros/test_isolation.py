"""Private DDS domains are claimed, so two robot_rl processes on one machine never share one."""

from __future__ import annotations

import subprocess
import sys

import pytest

from hardware.ros.isolation import DOMAINS, LOCK_DIR_ENV, DomainsExhausted, private_domain


@pytest.fixture
def claims(tmp_path, monkeypatch):
    monkeypatch.setenv(LOCK_DIR_ENV, str(tmp_path))
    monkeypatch.setenv("ROS_DOMAIN_ID", "7")
    return tmp_path


def test_claimed_domains_are_distinct_until_released_and_never_the_environments(claims):
    held = [private_domain() for _ in range(len(DOMAINS) - 1)]  # every domain but ROS_DOMAIN_ID's
    ids = [c.domain_id for c in held]
    assert len(set(ids)) == len(ids) and 7 not in ids
    with pytest.raises(DomainsExhausted, match="every private DDS domain"):
        private_domain()
    held[0].release()
    again = private_domain()
    assert again.domain_id == ids[0]  # the only free one
    for claim in [again, *held[1:]]:
        claim.release()


def test_a_domain_another_process_holds_is_not_taken(claims):
    """A claim lives in the kernel's lock table: another process's holds until that process ends."""
    code = ("import sys, time; from hardware.ros.isolation import private_domain; "
            "claims = [private_domain() for _ in range(98)]; "
            "print(','.join(str(c.domain_id) for c in claims), flush=True); time.sleep(30)")
    other = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        theirs = {int(d) for d in other.stdout.readline().strip().split(",")}
        mine = private_domain()
        assert mine.domain_id not in theirs and mine.domain_id != 7  # the one left
        mine.release()
    finally:
        other.kill()
        other.wait()
    after = [private_domain() for _ in range(2)]  # the killed process's claims are free again
    assert all(c.domain_id in theirs | {mine.domain_id} for c in after)
