"""Word tokens of templates and raw messages, for the word-vector models.

The recipe follows what LogRobust and LogAnomaly do to templates before embedding them:

1. every ``<*>`` wildcard becomes a separator;
2. composite identifiers are split: camelCase (``getBlockLocations`` -> ``get block
   locations``), acronym runs (``HTTPServer`` -> ``HTTP Server``) and snake_case / dotted
   / slashed names (every non-letter is a separator);
3. the text is lowercased and only runs of ASCII letters are kept, so pure numbers,
   hex ids and punctuation disappear (``blk_-42`` -> ``blk``, ``0x1F`` -> ``x``, ``f``);
4. tokens shorter than ``min_len`` (default 2: drops the single letters left over from
   hex ids and versions) and, optionally, stop words are dropped.

Everything runs as Polars string expressions over the whole column at once; a text
that yields no token gets an empty list (never null).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence

import polars as pl

from logsieve.errors import LogsieveError

__all__ = ["STOPWORDS", "tokenize", "tokenize_expr", "tokenize_series"]

# A short hand-written English stop list (articles, prepositions, pronouns, auxiliaries).
# Negations ("no", "not") and particles such as "up", "down", "off", "out" are deliberately
# absent: in logs they carry the meaning of a message ("block not found", "link down"),
# which LogAnomaly's template2vec cares about.
STOPWORDS: frozenset[str] = frozenset((
    "a", "an", "the", "and", "or", "but", "if", "then", "than", "so", "as", "of", "at", "by", "for",
    "from", "in", "into", "on", "onto", "to", "with", "within", "without", "via", "per", "this",
    "that", "these", "those", "it", "its", "is", "are", "was", "were", "be", "been", "being", "am",
    "has", "have", "had", "having", "do", "does", "did", "will", "would", "shall", "should", "can",
    "could", "may", "might", "must", "i", "me", "my", "we", "our", "you", "your", "he", "him",
    "his", "she", "her", "they", "them", "their", "there", "here", "which", "who", "whom", "what",
    "when", "where", "while", "about", "after", "before", "during", "again", "further", "all",
    "any", "both", "each", "few", "more", "most", "other", "some", "such", "only", "own", "same",
    "too", "very", "just", "s", "t",
))  # fmt: skip

_WILDCARD = r"<\*>"
_CAMEL = r"([a-z0-9])([A-Z])"  # fooBar, foo2Bar -> foo Bar
_ACRONYM = r"([A-Z]+)([A-Z][a-z])"  # HTTPServer -> HTTP Server
_WORD = r"[a-z]+"


def tokenize_expr(
    expr: pl.Expr,
    *,
    min_len: int = 2,
    stopwords: Collection[str] | None = None,
) -> pl.Expr:
    """Polars expression turning a string column into a ``list[str]`` of word tokens.

    Parameters
    ----------
    expr
        A string expression (template or raw message).
    min_len
        Shortest token kept (in characters).
    stopwords
        Lowercase words to drop (e.g. :data:`STOPWORDS`); None keeps every word.
    """
    if min_len < 1:
        raise LogsieveError(f"min_len must be >= 1, not {min_len}")
    out = (
        expr.fill_null("")
        .str.replace_all(_WILDCARD, " ")
        .str.replace_all(_CAMEL, "$1 $2")
        .str.replace_all(_ACRONYM, "$1 $2")
        .str.to_lowercase()
        .str.extract_all(_WORD)
    )
    keep = pl.element().str.len_chars() >= min_len
    if stopwords:
        keep = keep & ~pl.element().is_in(
            pl.lit(pl.Series(sorted(stopwords), dtype=pl.String)).implode()
        )
    if min_len > 1 or stopwords:
        out = out.list.eval(pl.element().filter(keep))
    return out.fill_null(pl.lit([], dtype=pl.List(pl.String)))


def tokenize_series(
    texts: pl.Series | Iterable[str | None],
    *,
    min_len: int = 2,
    stopwords: Collection[str] | None = None,
) -> pl.Series:
    """Tokens of every text as a ``list[str]`` Series (same length and order as ``texts``)."""
    s = texts if isinstance(texts, pl.Series) else pl.Series("text", list(texts), dtype=pl.String)
    if s.dtype != pl.String:
        if s.dtype == pl.Null:
            s = s.cast(pl.String)
        else:
            raise LogsieveError(f"texts must be strings, not {s.dtype}")
    name = s.name or "text"
    expr = tokenize_expr(pl.lit(s.rename(name)), min_len=min_len, stopwords=stopwords)
    return pl.select(expr.alias("tokens")).to_series()


def tokenize(
    texts: Sequence[str] | pl.Series,
    *,
    min_len: int = 2,
    stopwords: Collection[str] | None = None,
) -> list[list[str]]:
    """Tokens of every text as Python lists (the form gensim trains on).

    >>> tokenize(["<*>Adding an already existing block<*>"])
    [['adding', 'an', 'already', 'existing', 'block']]
    >>> tokenize(["getHTTPResponse failed_for blk_-42"])
    [['get', 'http', 'response', 'failed', 'for', 'blk']]
    """
    return tokenize_series(texts, min_len=min_len, stopwords=stopwords).to_list()
