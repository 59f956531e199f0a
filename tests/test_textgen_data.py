"""Corpora and tokenizers of genlab.data.text, on tiny fixture files the tests write."""

import base64

import pytest
import torch

from genlab.data import text as T
from genlab.errors import ConfigError, DataError

BOOK = (
    "Alice was beginning to get very tired of sitting by her sister on the bank, and of having "
    "nothing to do: once or twice she had peeped into the book her sister was reading. "
) * 20

GUTENBERG = (
    "\ufeffProject Gutenberg's Book, by Someone\n\nLicence words\n\n"
    "*** START OF THIS PROJECT GUTENBERG EBOOK BOOK ***\n\n"
    + BOOK
    + "\n\n*** END OF THIS PROJECT GUTENBERG EBOOK BOOK ***\n\nLicence footer text\n"
)


def test_strip_gutenberg_keeps_only_the_book():
    out = T.strip_gutenberg(GUTENBERG)
    assert out.startswith("Alice was beginning")
    assert "Licence" not in out and "GUTENBERG" not in out
    assert T.strip_gutenberg("plain text\n") == "plain text\n"


def test_load_corpus_from_a_file_and_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("GENLAB_DATA", str(tmp_path / "empty-cache"))
    p = tmp_path / "book.txt"
    p.write_text(GUTENBERG)
    assert T.load_corpus("text", p).startswith("Alice")
    with pytest.raises(ConfigError, match="unknown corpus 'bob'"):
        T.load_corpus("bob")
    with pytest.raises(DataError, match="not found"):
        T.load_corpus("text", tmp_path / "missing.txt")
    with pytest.raises(DataError, match="genlab data fetch alice"):
        T.load_corpus("alice")


def test_built_in_sample_corpus_needs_no_fetch_and_spells_the_lab_sentences(tmp_path, monkeypatch):
    monkeypatch.setenv("GENLAB_DATA", str(tmp_path / "empty-cache"))
    text = T.load_corpus("sample")
    assert text == T.SAMPLE_TEXT and len(text) > 2000
    tok = T.CharTokenizer.train(text)
    for s in ("I am a little squirrel holding a walnut", "The little squirrel was around Alice but she kept saying"):
        assert 1 not in tok.encode(s)  # no unknown characters in the tiny demo's inversion target and prompt


def test_char_tokenizer_round_trip_unknown_characters_and_save(tmp_path):
    tok = T.CharTokenizer.train(BOOK)
    s = "Alice had a sister"  # every character is in the book: nothing is lost
    assert tok.decode(tok.encode(s)) == s
    ids = tok.encode("Zé")  # not in the book: the unknown token
    assert ids == [1, 1]
    tok.save(tmp_path)
    again = T.CharTokenizer.load(tmp_path)
    assert again.encode(s) == tok.encode(s) and again.vocab_size == tok.vocab_size


def test_bpe_tokenizer_learns_merges_encodes_anything_and_reloads(tmp_path):
    tok = T.BPETokenizer.train(BOOK, vocab_size=300)
    assert 256 < tok.vocab_size <= 300
    assert len(tok.encode(" sister")) < len(" sister")  # frequent words are merged
    for s in ("I am a little squirrel holding a walnut", "naïve ☃ 123"):
        assert tok.decode(tok.encode(s)) == s  # byte-level: every string encodes
    tok.save(tmp_path)
    again = T.BPETokenizer.load(tmp_path)
    assert again.encode(BOOK[:200]) == tok.encode(BOOK[:200])
    with pytest.raises(DataError):
        T.BPETokenizer.load(tmp_path / "nowhere")


def test_gpt2_tokenizer_reads_a_tiktoken_ranks_file(tmp_path):
    merges = [bytes([b]) for b in range(256)] + [b"th", b"he", b" t", b" th", b"the"]
    path = tmp_path / "ranks.tiktoken"
    path.write_text("".join(f"{base64.b64encode(m).decode()} {i}\n" for i, m in enumerate(merges)))
    tok = T.GPT2Tokenizer(path)
    assert tok.vocab_size == len(merges) + 1 and tok.eot == len(merges)
    ids = tok.encode("the other")
    assert merges.index(b"the") in ids
    assert tok.decode(ids) == "the other"


def test_build_tokenizer_rejects_unknown_names():
    with pytest.raises(ConfigError, match="unknown tokenizer 'wordpiece'"):
        T.build_tokenizer("wordpiece", BOOK)


def test_token_data_split_and_shifted_targets():
    ids = list(range(1000))
    d = T.TokenData(ids, block_size=8)
    assert len(d.val) == 100 and d.val[0].item() == 900  # the last 10%
    x, y = d.batch("train", 4, torch.Generator().manual_seed(0))
    assert x.shape == (4, 8) and torch.equal(y, x + 1)
    assert int(x.max()) < 900
    with pytest.raises(DataError, match="only 12 tokens"):
        T.TokenData(list(range(12)), block_size=8)
