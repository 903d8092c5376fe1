"""The routing features, exactly as src/routing/features.cpp computes them.

This file is the single source of truth for the cue word lists: train_router.py writes them into
src/routing/router_model.inc, and the C++ side only implements the generic steps (tokenise, hash,
look up). Any change here needs a retrain; the C++ test `policy_test` checks that both sides give
the same score on the sample messages the training script embeds.
"""
import math
import re

MAX_BYTES = 4096      # only the head of a message is read: the decision stays cheap for any size
MAX_TOKENS = 768
HASH_BITS = 18
HASH_MASK = (1 << HASH_BITS) - 1

# Cue words (single tokens) and cue bigrams ("a b"): each hit counts once per occurrence.
CUES = {
    "code": [
        "def", "return", "function", "class", "import", "include", "printf", "println", "const", "var",
        "void", "int", "public", "static", "lambda", "async", "await", "sql", "select", "python",
        "javascript", "typescript", "java", "rust", "golang", "cpp", "code", "script", "regex", "json",
        "html", "css", "bug", "debug", "compile", "compiler", "exception", "stacktrace", "array",
        "struct", "pointer", "algorithm", "implement", "refactor", "kubernetes", "docker", "bash",
        "segfault", "null", "nullptr", "std", "self", "elif", "endif", "fn", "impl",
    ],
    "math": [
        "solve", "equation", "equations", "integral", "derivative", "calculate", "compute", "probability",
        "matrix", "prove", "proof", "theorem", "polynomial", "limit", "sqrt", "log", "sin", "cos", "tan",
        "prime", "factor", "fraction", "percent", "sum", "product", "expected", "variance", "mean",
        "median", "integer", "integers", "vector", "eigenvalue", "modulo", "mod", "divisible", "ratio",
        "converge", "series", "geometric", "frac", "cdot", "infty", "lim", "function", "graph",
    ],
    "reasoning": [
        "why", "explain", "reason", "reasoning", "compare", "contrast", "analyze", "analyse", "evaluate",
        "argue", "argument", "implications", "tradeoffs", "tradeoff", "pros", "cons", "therefore",
        "hence", "implies", "suppose", "assume", "assuming", "consequently", "justify", "critique",
        "plan", "strategy", "design", "architecture", "optimize", "optimise", "conclude", "infer",
        "deduce", "step by", "by step", "think through", "trade offs", "what if", "how would",
    ],
    "depth": [
        "detailed", "thorough", "thoroughly", "comprehensive", "elaborate", "essay", "report", "extensive",
        "exhaustive", "rigorous", "rigorously", "nuanced", "in detail", "in depth", "long form",
        "deep dive", "step-by-step", "walk me", "walk through",
    ],
}

DENSE_NAMES = ["length", "lines", "code", "math", "digits", "reasoning", "depth", "non_ascii",
               "questions", "capitals", "turns", "conversation"]
# Features no prompt of the training set can teach (every MMLU prompt is a first turn): their
# weights are set by hand in train_router.py, the training keeps them fixed.
PRIOR_ONLY = {"turns", "conversation"}

_word_re = re.compile(rb"[a-z0-9\x80-\xff]+")


def fnv1a32(data: bytes) -> int:
    h = 0x811C9DC5
    for c in data:
        h ^= c
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def bigram_hash(first: int, second: int) -> int:
    """Combines two unigram hashes (cheaper than hashing the bigram's bytes again)."""
    h = ((first * 0x9E3779B1) & 0xFFFFFFFF) ^ second
    h ^= h >> 15
    h = (h * 0x85EBCA6B) & 0xFFFFFFFF
    return h ^ (h >> 13)


def tokens(head: bytes):
    return _word_re.findall(head.lower())[:MAX_TOKENS]


def _cue_table():
    table = {}
    for category, words in CUES.items():
        for w in words:
            hashes = [fnv1a32(b"u" + part.encode()) for part in w.split(" ")]
            key = hashes[0] if len(hashes) == 1 else bigram_hash(hashes[0], hashes[1])
            table.setdefault(key, set()).add(category)
    return table


CUE_TABLE = _cue_table()


def features(message: str, turns_so_far: int = 0, conversation_chars: int = 0):
    """Returns (dense feature list in DENSE_NAMES order, list of hashed n-gram buckets)."""
    raw = message.encode("utf-8")
    head = raw[:MAX_BYTES]
    toks = tokens(head)
    hashes = []
    counts = {"code": 0, "math": 0, "reasoning": 0, "depth": 0}
    prev = None
    for t in toks:
        h = fnv1a32(b"u" + t)
        hashes.append(h)
        for c in CUE_TABLE.get(h, ()):
            counts[c] += 1
        if prev is not None:
            hb = bigram_hash(prev, h)
            hashes.append(hb)
            for c in CUE_TABLE.get(hb, ()):
                counts[c] += 1
        prev = h
    n = len(head)
    newlines = head.count(b"\n")
    fences = head.count(b"```")
    braces = sum(head.count(ch) for ch in (b"{", b"}", b";"))
    operators = sum(head.count(ch) for ch in (b"=", b"^", b"+", b"*", b"/", b"<", b">"))
    digits = sum(1 for c in head if 48 <= c <= 57)
    non_ascii = sum(1 for c in head if c >= 128)
    questions = head.count(b"?")
    upper = sum(1 for c in head if 65 <= c <= 90)
    letters = upper + sum(1 for c in head if 97 <= c <= 122)
    code_hits = counts["code"] + braces + 4 * fences
    math_hits = counts["math"] + operators
    dense = [
        min(math.log1p(len(raw)) / math.log(4097.0), 1.5),
        min(newlines, 40) / 40.0,
        min(code_hits, 8) / 8.0,
        min(math_hits, 8) / 8.0,
        digits / n if n else 0.0,
        min(counts["reasoning"], 5) / 5.0,
        min(counts["depth"], 3) / 3.0,
        non_ascii / n if n else 0.0,
        min(questions, 4) / 4.0,
        upper / letters if letters else 0.0,
        min(turns_so_far, 10) / 10.0,
        min(math.log1p(conversation_chars) / math.log(65537.0), 1.5),
    ]
    return dense, [h & HASH_MASK for h in hashes]
