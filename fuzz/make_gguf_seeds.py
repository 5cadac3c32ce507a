#!/usr/bin/env python3
"""Writes the GGUF seed corpus (fuzz/corpus/gguf/): tiny files in the shapes real models
have (a llama-style header with a GPT-2 BPE tokenizer, F32 and Q8_0 tensors), so the fuzzer
starts from valid files instead of having to discover the format. Run from fuzz/."""
import struct

def s(text):
    b = text.encode()
    return struct.pack("<Q", len(b)) + b

def kv(key, typ, payload):
    return s(key) + struct.pack("<I", typ) + payload

def u32(key, v): return kv(key, 4, struct.pack("<I", v))
def f32(key, v): return kv(key, 6, struct.pack("<f", v))
def boolean(key, v): return kv(key, 7, struct.pack("<B", v))
def string(key, v): return kv(key, 8, s(v))
def strings(key, vs): return kv(key, 9, struct.pack("<IQ", 8, len(vs)) + b"".join(s(v) for v in vs))
def i32s(key, vs): return kv(key, 9, struct.pack("<IQ", 5, len(vs)) + b"".join(struct.pack("<i", v) for v in vs))

def gguf(kvs, tensors):
    """tensors: (name, dims, ggml type, data bytes)."""
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs)) + b"".join(kvs)
    infos, offset, blob = b"", 0, b""
    for name, dims, typ, data in tensors:
        infos += s(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        infos += struct.pack("<IQ", typ, offset)
        pad = (-len(data)) % 32
        blob += data + b"\0" * pad
        offset += len(data) + pad
    out = head + infos
    out += b"\0" * ((-len(out)) % 32)
    return out + blob

tokens = ["<s>", "</s>", "a", "b", "ab", "Ġ", "Ġa"]
tokenizer = [
    string("tokenizer.ggml.model", "gpt2"),
    strings("tokenizer.ggml.tokens", tokens),
    i32s("tokenizer.ggml.token_type", [3, 3, 1, 1, 1, 1, 1]),
    strings("tokenizer.ggml.merges", ["a b", "Ġ a"]),
    u32("tokenizer.ggml.bos_token_id", 0),
    u32("tokenizer.ggml.eos_token_id", 1),
    boolean("tokenizer.ggml.add_bos_token", 1),
]
llama = [
    string("general.architecture", "llama"),
    u32("general.alignment", 32),
    u32("llama.context_length", 64),
    u32("llama.embedding_length", 8),
    u32("llama.block_count", 1),
    u32("llama.attention.head_count", 2),
    u32("llama.attention.head_count_kv", 1),
    f32("llama.attention.layer_norm_rms_epsilon", 1e-5),
    string("tokenizer.chat_template", "{% for m in messages %}{{ m.content }}{% endfor %}"),
]
f32_tensor = ("token_embd.weight", [8, 7], 0, struct.pack("<56f", *([0.5] * 56)))
# Q8_0: blocks of 32 weights, an f16 scale then 32 int8 values (34 bytes).
q8_block = struct.pack("<e", 0.1) + bytes(range(32))
q8_tensor = ("blk.0.attn_q.weight", [32, 2], 8, q8_block * 2)

seeds = {
    "header_only": gguf([], []),
    "metadata": gguf(llama, []),
    "tokenizer": gguf(llama + tokenizer, [f32_tensor]),
    "tensors": gguf(llama[:2], [f32_tensor, q8_tensor]),
}
for name, data in seeds.items():
    with open(f"corpus/gguf/{name}", "wb") as f:
        f.write(data)
