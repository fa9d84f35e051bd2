"""The pure decisions replicas share about GitHub's limits (forge/quota.py): plain data in, plain
data out, no clock, no database."""

from __future__ import annotations

from mlops_bot.forge import quota
from mlops_bot.forge.quota import Budget, SharedToken

NOW = 1_700_000_000.0
HEADERS = {"X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": "4990",
           "X-RateLimit-Reset": str(int(NOW) + 600)}


def test_an_answer_reports_its_window_and_nothing_blocks() -> None:
    seen = quota.observe(200, HEADERS, "", NOW)
    assert seen == Budget(5000, 4990, NOW + 600, 0.0)
    assert quota.seconds_to_wait(seen, NOW) == 0.0
    assert quota.observe(200, {"content-type": "application/json"}, "", NOW) is None


def test_secondary_limit_blocks_for_retry_after_and_primary_until_reset() -> None:
    secondary = quota.observe(403, {**HEADERS, "Retry-After": "30"},
                              "You have exceeded a secondary rate limit", NOW)
    assert secondary is not None and secondary.blocked_until == NOW + 30
    assert quota.seconds_to_wait(secondary, NOW + 10) == 20.0
    assert quota.seconds_to_wait(secondary, NOW + 31) == 0.0
    exhausted = {**HEADERS, "X-RateLimit-Remaining": "0"}
    primary = quota.observe(429, exhausted, "API rate limit exceeded", NOW)
    assert primary is not None and primary.blocked_until == NOW + 601  # the reset's second, then go
    named_only = quota.observe(403, {}, "You have exceeded a secondary rate limit.", NOW, secondary_wait=60)
    assert named_only == Budget(None, None, 0.0, NOW + 60)
    # a 403 that is not a limit (a missing permission) blocks nothing
    forbidden = quota.observe(403, HEADERS, "Resource not accessible by integration", NOW)
    assert forbidden is not None and forbidden.blocked_until == 0.0


def test_a_budget_down_to_the_reserve_waits_for_the_reset() -> None:
    low = Budget(5000, quota.RESERVE, NOW + 100, 0.0)
    assert quota.seconds_to_wait(low, NOW) == 101.0
    assert quota.seconds_to_wait(low, NOW + 101) == 0.0  # a new window: the old count means nothing
    assert quota.seconds_to_wait(Budget(5000, quota.RESERVE + 1, NOW + 100), NOW) == 0.0
    assert quota.seconds_to_wait(None, NOW) == 0.0


def test_merge_keeps_the_newest_window_the_lowest_count_and_the_longest_block() -> None:
    stored = Budget(5000, 100, NOW + 100, NOW + 5)
    # the same window, an answer that left earlier (out of order): the lower count stays
    assert quota.merge(stored, Budget(5000, 120, NOW + 100)) == stored
    assert quota.merge(stored, Budget(5000, 80, NOW + 100)) == Budget(5000, 80, NOW + 100, NOW + 5)
    # a newer window replaces the counts; the block stays
    assert quota.merge(stored, Budget(5000, 4999, NOW + 3700)) == Budget(5000, 4999, NOW + 3700, NOW + 5)
    # an older window's late answer changes nothing but can lengthen the block
    assert quota.merge(stored, Budget(5000, 1, NOW - 10, NOW + 50)) == Budget(5000, 100, NOW + 100, NOW + 50)
    assert quota.merge(None, stored) == stored
    assert Budget.from_json(stored.to_json()) == stored and Budget.from_json(None) is None


def test_only_what_matters_is_written_to_the_shared_store() -> None:
    assert not quota.worth_sharing(Budget(5000, 4000, NOW + 100))
    assert quota.worth_sharing(Budget(5000, 1000, NOW + 100))  # a quarter left
    assert quota.worth_sharing(Budget(None, None, 0.0, NOW + 5))  # a block, always
    assert quota.worth_sharing(Budget(30, 15, NOW + 100))  # small limits: twice the reserve


def test_token_lease_one_minter_others_wait_then_use() -> None:
    margin, lease = 300.0, 60.0
    a, b = "replica-a", "replica-b"
    row = quota.take_lease(None, a, NOW, margin, lease)
    assert row == SharedToken("", 0.0, a, NOW + lease)
    assert quota.next_token_step(row, a, NOW, margin) == quota.MintToken()
    # b comes while a mints: the row stays a's, b waits (polling, never past the lease)
    assert quota.take_lease(row, b, NOW + 1, margin, lease) == row
    step = quota.next_token_step(row, b, NOW + 1, margin)
    assert isinstance(step, quota.WaitForToken) and 0 < step.seconds <= 0.2
    stored = quota.minted("sealed-token", NOW + 3600)
    assert quota.take_lease(stored, b, NOW + 2, margin, lease) == stored
    assert quota.next_token_step(stored, b, NOW + 2, margin) == quota.UseToken("sealed-token", NOW + 3600)
    # near expiry the first to ask takes the lease; the old token is kept until the new one is stored
    late = NOW + 3600 - margin
    renewing = quota.take_lease(stored, b, late, margin, lease)
    assert renewing == SharedToken("sealed-token", NOW + 3600, b, late + lease)
    assert quota.next_token_step(renewing, a, late, margin) != quota.MintToken()


def test_a_dead_minters_lease_runs_out_and_a_failed_mint_releases_it() -> None:
    held = quota.take_lease(None, "dead", NOW, 300.0, 60.0)
    assert quota.take_lease(held, "alive", NOW + 59, 300.0, 60.0) == held
    taken = quota.take_lease(held, "alive", NOW + 61, 300.0, 60.0)
    assert taken is not None and taken.lease_owner == "alive"
    assert quota.released(taken, "alive") == SharedToken()
    assert quota.released(taken, "someone-else") == taken  # only the holder drops its lease


def test_writes_are_paced_across_replicas() -> None:
    assert quota.reserve_write(0.0, NOW, 1.0) == (NOW + 1.0, 0.0)  # free: go now
    assert quota.reserve_write(NOW + 1.0, NOW, 1.0) == (NOW + 2.0, 1.0)  # another replica's slot first
    assert quota.reserve_write(NOW + 1.0, NOW + 5.0, 1.0) == (NOW + 6.0, 0.0)  # long free again
