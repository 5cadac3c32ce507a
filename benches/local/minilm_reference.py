"""Records reference sentence embeddings for all-MiniLM-L6-v2, computed without candle.

A plain NumPy implementation of the BERT encoder (as in Hugging Face's
modeling_bert.py: post-layer-norm, erf GELU), followed by sentence-transformers'
pooling for this model (mean over the attention mask, then L2 normalisation) and
its 256-token truncation. llmkit-local's embed tests compare candle's vectors
against the file this writes, which checks weight loading, the encoder and the
pooling against an independent path.

Needs numpy, tokenizers and safetensors (no torch):
    python3 -m venv /tmp/v && /tmp/v/bin/pip install numpy tokenizers safetensors
    /tmp/v/bin/python benches/local/minilm_reference.py [MODEL_DIR] [OUT.json]
"""

import json
import math
import os
import sys
from pathlib import Path

import numpy as np
import safetensors.numpy
import tokenizers

REPO = Path(__file__).resolve().parents[2]
MODEL_DIR = Path(
    sys.argv[1] if len(sys.argv) > 1
    else Path(os.environ.get("LLMKIT_MODELS_DIR", REPO / "models")) / "all-MiniLM-L6-v2"
)
OUT = Path(
    sys.argv[2] if len(sys.argv) > 2
    else REPO / "crates/llmkit-local/tests/fixtures/minilm_reference.json"
)
MAX_SEQ_LEN = 256

TEXTS = [
    "A man is playing a guitar.",
    "Someone plays the guitar.",
    "The stock market fell sharply on Monday.",
    "Rust's borrow checker prevents data races at compile time.",
    "你好，世界！",
    "",
    # About 400 word pieces: checks truncation to MAX_SEQ_LEN.
    "The quick brown fox jumps over the lazy dog. " * 40,
]


def erf(x):
    return np.vectorize(math.erf, otypes=[np.float64])(x)


def layer_norm(x, w, b, eps):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * w + b


def encode(weights, cfg, ids):
    """Hidden states (seq, hidden) of one unpadded sequence, in float64."""
    w = {k: v.astype(np.float64) for k, v in weights.items()}
    p = "" if "embeddings.word_embeddings.weight" in w else "bert."
    eps = cfg["layer_norm_eps"]
    n = len(ids)
    x = (
        w[p + "embeddings.word_embeddings.weight"][ids]
        + w[p + "embeddings.position_embeddings.weight"][:n]
        + w[p + "embeddings.token_type_embeddings.weight"][0]
    )
    x = layer_norm(x, w[p + "embeddings.LayerNorm.weight"], w[p + "embeddings.LayerNorm.bias"], eps)
    heads = cfg["num_attention_heads"]
    d = cfg["hidden_size"] // heads
    for i in range(cfg["num_hidden_layers"]):
        l = f"{p}encoder.layer.{i}."

        def lin(name, h):
            return h @ w[l + name + ".weight"].T + w[l + name + ".bias"]

        q = lin("attention.self.query", x).reshape(n, heads, d).transpose(1, 0, 2)
        k = lin("attention.self.key", x).reshape(n, heads, d).transpose(1, 0, 2)
        v = lin("attention.self.value", x).reshape(n, heads, d).transpose(1, 0, 2)
        scores = q @ k.transpose(0, 2, 1) / math.sqrt(d)
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        scores /= scores.sum(-1, keepdims=True)
        ctx = (scores @ v).transpose(1, 0, 2).reshape(n, heads * d)
        x = layer_norm(lin("attention.output.dense", ctx) + x,
                       w[l + "attention.output.LayerNorm.weight"],
                       w[l + "attention.output.LayerNorm.bias"], eps)
        h = lin("intermediate.dense", x)
        h = 0.5 * h * (1.0 + erf(h / math.sqrt(2.0)))
        x = layer_norm(lin("output.dense", h) + x,
                       w[l + "output.LayerNorm.weight"], w[l + "output.LayerNorm.bias"], eps)
    return x


def main():
    cfg = json.loads((MODEL_DIR / "config.json").read_text())
    weights = safetensors.numpy.load_file(str(MODEL_DIR / "model.safetensors"))
    tok = tokenizers.Tokenizer.from_file(str(MODEL_DIR / "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(MAX_SEQ_LEN)
    items = []
    for text in TEXTS:
        ids = tok.encode(text).ids
        # Without padding every token is attended, so the mask-weighted mean is the plain mean.
        mean = encode(weights, cfg, ids).mean(0)
        vec = mean / max(np.linalg.norm(mean), 1e-12)
        items.append({"text": text, "ids": ids, "vector": [round(float(x), 7) for x in vec]})
    OUT.parent.mkdir(parents=True, exist_ok=True)
    header = json.dumps({
        "generator": "benches/local/minilm_reference.py (NumPy float64 BERT, mean pooling, L2 norm)",
        "model": "all-MiniLM-L6-v2",
        "max_seq_len": MAX_SEQ_LEN,
        "tokenizers": tokenizers.__version__,
    }, ensure_ascii=False, indent=1)
    # One item per line keeps the fixture short and its diffs readable.
    lines = ",\n  ".join(json.dumps(i, ensure_ascii=False) for i in items)
    OUT.write_text(header[:-2] + ',\n "items": [\n  ' + lines + "\n ]\n}\n")
    print(f"wrote {OUT}")
    v = [np.array(i["vector"]) for i in items]
    print(f"cos(0,1)={v[0] @ v[1]:.4f} cos(0,2)={v[0] @ v[2]:.4f}")


if __name__ == "__main__":
    main()
