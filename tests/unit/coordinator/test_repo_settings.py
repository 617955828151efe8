"""What `repo add` accepts as a repository's name, URL, pipeline path, poll interval and secret."""

from __future__ import annotations

import pytest

from coordinator.domain.repos import check_repo

GOOD = ("shop", "https://git.example.com/acme/shop.git", ".conveyor.yml", 60.0, "")


@pytest.mark.parametrize(
    "url",
    [
        "https://git.example.com/a/b.git",
        "http://host:3000/a/b",
        "ssh://git@host:2222/a/b.git",
        "git@github.com:acme/shop.git",
        "git://host/a",
        "file:///srv/git/shop.git",
        "/srv/git/shop",
    ],
)
def test_urls_git_can_fetch_from_are_accepted(url: str) -> None:
    check_repo("shop", url, ".conveyor.yml", 60.0, "")


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        (0, "a/b", "invalid repository name"),
        (0, "-x", "invalid repository name"),
        (0, "x" * 65, "invalid repository name"),
        (1, "ext::sh -c touch% /tmp/pwned", "whitespace"),
        (1, "ext::sh", "unsupported repository URL"),
        (1, "fd::7", "unsupported repository URL"),
        (1, "--upload-pack=evil", "unsupported repository URL"),
        (1, "relative/path", "unsupported repository URL"),
        (1, "https://host/a\nb", "whitespace or control"),
        (2, "/etc/passwd", "invalid pipeline path"),
        (2, "ci/../../x.yml", "invalid pipeline path"),
        (2, "ci/", "invalid pipeline path"),
        (2, "ci\\x.yml", "invalid pipeline path"),
        (3, 0.5, "out of range"),
        (3, 8 * 86400.0, "out of range"),
        (3, float("nan"), "out of range"),
        (4, "short", "webhook secret"),
        (4, "x" * 257, "webhook secret"),
        (4, "with\0nul-inside", "webhook secret"),
    ],
)
def test_bad_settings_are_refused_naming_what(field: int, value: object, words: str) -> None:
    settings = list(GOOD)
    settings[field] = value
    with pytest.raises(ValueError, match=words):
        check_repo(*settings)  # type: ignore[arg-type]


def test_a_pipeline_path_in_a_directory_is_accepted() -> None:
    check_repo("shop", GOOD[1], "ci/conveyor.yml", 1.0, "a-long-enough-secret")
