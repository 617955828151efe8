"""Reading `git ls-remote --symref` output into the branch or tag a ref names."""

from __future__ import annotations

from conveyor.cli.refs import parse_listing

LISTING = (
    "ref: refs/heads/main\tHEAD\n"
    "aaa\tHEAD\n"
    "aaa\trefs/heads/main\n"
    "bbb\trefs/heads/v2\n"
    "ccc\trefs/tags/v1\n"
    "aaa\trefs/tags/v1^{}\n"
    "ddd\trefs/tags/v2\n"
)


def test_branches_tags_head_and_commits() -> None:
    assert parse_listing(LISTING, "main") == ("main", "")
    assert parse_listing(LISTING, "v1") == ("", "v1")
    assert parse_listing(LISTING, "refs/tags/v1") == ("", "v1")
    assert parse_listing(LISTING, "HEAD") == ("main", "")
    # A name that is both a branch and a tag checks out the branch, as git does.
    assert parse_listing(LISTING, "v2") == ("v2", "")
    assert parse_listing(LISTING, "0123abc") == ("", "")
    assert parse_listing("", "main") == ("", "")
