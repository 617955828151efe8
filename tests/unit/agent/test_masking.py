"""Masking secret values in a step's output: across chunk boundaries, overlapping, multi-line."""

from __future__ import annotations

import threading
import time

import pytest

from agent.masking import MASK, Masker, MaskingWriter, masked_sink, masked_values


def run(values: list[str], chunks: list[bytes]) -> bytes:
    masker = Masker(masked_values(values))
    return b"".join(masker.feed(chunk) for chunk in chunks) + masker.flush()


def test_a_value_written_whole_is_masked() -> None:
    assert run(["s3cr3t-value"], [b"token=s3cr3t-value done\n"]) == b"token=[masked] done\n"


@pytest.mark.parametrize("cut", range(1, len("s3cr3t-value")))
def test_a_value_split_at_any_byte_is_masked(cut: int) -> None:
    line = b"token=s3cr3t-value done\n"
    start = line.index(b"s3cr3t")
    chunks = [line[: start + cut], line[start + cut :]]
    assert run(["s3cr3t-value"], chunks) == b"token=[masked] done\n"


def test_a_value_written_a_byte_at_a_time_is_masked() -> None:
    line = b"<<abcd-efgh>>\n"
    assert run(["abcd-efgh"], [bytes([b]) for b in line]) == b"<<[masked]>>\n"


def test_every_occurrence_is_masked_and_other_output_is_untouched() -> None:
    text = b"abcd abcd ab cd abc\xff\x00abcd\n"
    assert run(["abcd"], [text]) == b"[masked] [masked] ab cd abc\xff\x00[masked]\n"


def test_overlapping_values_are_masked_as_one_span() -> None:
    assert run(["abcdef", "defghi"], [b"xabcdefghiy\n"]) == b"x[masked]y\n"
    assert run(["abcd", "bc12"], [b"abc", b"d bc12\n"]) == b"[masked] [masked]\n"


def test_a_shorter_value_inside_a_longer_one_leaves_nothing_of_the_longer() -> None:
    # "abc1" is complete before "abc1defg" is: holding it back keeps "defg" from going out bare.
    masker = Masker(masked_values(["abc1", "abc1defg"]))
    assert masker.feed(b"abc1de") == b""
    assert masker.feed(b"fg!\n") + masker.flush() == b"[masked]!\n"


def test_each_line_of_a_multi_line_value_is_masked() -> None:
    key = "-----BEGIN KEY-----\nMIIEpAIBAAKCAQEA\r\nzzzz-last\n-----END KEY-----\n"
    out = run([key], [key.encode()[:25], key.encode()[25:], b"  MIIEpAIBAAKCAQEA indented\n"])
    assert out == MASK + b"\n" + MASK + b"\r\n" + MASK + b"\n" + MASK + b"\n  [masked] indented\n"


def test_output_that_cannot_start_a_value_is_never_held() -> None:
    masker = Masker(masked_values(["abcd"]))
    assert masker.feed(b"progress: 10%") == b"progress: 10%"
    assert not masker.holding
    assert masker.feed(b" ... a") == b" ... "
    assert masker.holding
    assert masker.feed(b"x\n") == b"ax\n"


def test_a_line_end_releases_what_was_held() -> None:
    masker = Masker(masked_values(["abcd"]))
    assert masker.feed(b"ab") == b""
    assert masker.feed(b"\n") == b"ab\n"


def test_values_too_short_to_mask_are_left_out() -> None:
    assert masked_values(["ab\ncdef\n", "xyz"]) == (b"cdef",)


class Sink:
    def __init__(self) -> None:
        self.data = b""
        self.lock = threading.Lock()

    def __call__(self, data: bytes) -> None:
        with self.lock:
            self.data += data


def test_the_writer_masks_a_value_written_in_pieces_with_a_pause() -> None:
    sink = Sink()
    writer = MaskingWriter(masked_values(["abcd"]), sink, hold_s=30.0)
    writer.write(b"ab")
    time.sleep(0.3)
    assert sink.data == b""
    writer.write(b"cd\n")
    writer.close()
    assert sink.data == b"[masked]\n"


def test_the_writer_lets_held_output_out_after_the_hold_time() -> None:
    sink = Sink()
    writer = MaskingWriter(masked_values(["abcd"]), sink, hold_s=0.2)
    writer.write(b"prompt: a")
    deadline = time.monotonic() + 30
    while sink.data != b"prompt: a" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sink.data == b"prompt: a"
    writer.close()
    assert sink.data == b"prompt: a"


def test_closing_the_writer_lets_the_rest_out_masked() -> None:
    sink = Sink()
    writer = MaskingWriter(masked_values(["abcd", "abcdefgh"]), sink, hold_s=30.0)
    writer.write(b"x abcd")
    writer.close()
    assert sink.data == b"x [masked]"


def test_the_step_sink_is_the_spool_itself_without_secrets() -> None:
    sink = Sink()
    with masked_sink((), sink, hold_s=30.0) as write:
        assert write is sink


def test_the_step_sink_lets_held_output_out_when_the_step_fails() -> None:
    sink = Sink()
    with pytest.raises(RuntimeError), masked_sink(masked_values(["abcd"]), sink, 30.0) as write:
        write(b"x ab")
        raise RuntimeError("the executor broke")
    assert sink.data == b"x ab"


@pytest.mark.parametrize("count", [1, 5, 6, 40])
def test_many_values_are_masked_as_few_are(count: int) -> None:
    values = [f"value-{index:02d}-x" for index in range(count)]
    text = b"".join(f"<{value}>".encode() for value in values) + b"value-0 plain\n"
    chunks = [text[index : index + 7] for index in range(0, len(text), 7)]
    assert run(values, chunks) == b"<[masked]>" * count + b"value-0 plain\n"
