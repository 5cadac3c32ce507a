"""Writes a tiny random-weight GGUF of another architecture (qwen2, qwen3, phi3 or gemma3) with
SmolLM2's tokenizer, so llmkit-local's loaders for those architectures can be checked
against llama.cpp without downloading a real model (see README.md, "Other architectures").

Usage: python synthetic_arch.py SMOLLM2.gguf OUT.gguf [qwen2|qwen3|phi3|gemma3]
Needs: pip install gguf numpy
"""
import sys, numpy as np, gguf
src = gguf.GGUFReader(sys.argv[1])
arch = sys.argv[3] if len(sys.argv) > 3 else "qwen2"
out = gguf.GGUFWriter(sys.argv[2], arch)
rng = np.random.default_rng(0)
# copy tokenizer metadata
for name, field in src.fields.items():
    if not name.startswith("tokenizer."):
        continue
    t = field.types
    if name in ("tokenizer.chat_template",):
        out.add_string(name, bytes(field.parts[field.data[0]]).decode()); continue
    if t[0] == gguf.GGUFValueType.ARRAY:
        if t[1] == gguf.GGUFValueType.STRING:
            out.add_array(name, [bytes(field.parts[i]).decode("utf-8", "surrogateescape") for i in field.data])
        else:
            out.add_array(name, [field.parts[i].tolist()[0] for i in field.data])
    elif t[0] == gguf.GGUFValueType.STRING:
        out.add_string(name, bytes(field.parts[field.data[0]]).decode())
    elif t[0] == gguf.GGUFValueType.BOOL:
        out.add_bool(name, bool(field.parts[field.data[0]][0]))
    else:
        out.add_uint32(name, int(field.parts[field.data[0]][0]))
vocab = len(src.fields["tokenizer.ggml.tokens"].data)
d, L, heads, kv, ff = 64, 2, 4, 2, 128
hd = d // heads
out.add_context_length(512); out.add_embedding_length(d); out.add_block_count(L)
out.add_feed_forward_length(ff); out.add_head_count(heads); out.add_head_count_kv(kv)
out.add_rope_freq_base(10000.0); out.add_layer_norm_rms_eps(1e-6)
if arch in ("qwen3", "gemma3"):
    out.add_key_length(hd); out.add_value_length(hd)
if arch == "phi3":
    out.add_rope_dimension_count(hd)
if arch == "gemma3":
    out.add_sliding_window(512)
def t(name, shape, scale):
    out.add_tensor(name, (rng.standard_normal(shape) * scale).astype(np.float32))
t("token_embd.weight", (vocab, d), 1.0)
for i in range(L):
    p = f"blk.{i}."
    out.add_tensor(p + "attn_norm.weight", np.ones(d, np.float32))
    if arch == "phi3":
        t(p + "attn_qkv.weight", (d + 2 * kv * hd, d), 0.3)
    else:
        t(p + "attn_q.weight", (d, d), 0.3)
        t(p + "attn_k.weight", (kv * hd, d), 0.3)
        t(p + "attn_v.weight", (kv * hd, d), 0.3)
    if arch == "qwen2":
        t(p + "attn_q.bias", (d,), 0.1); t(p + "attn_k.bias", (kv * hd,), 0.1); t(p + "attn_v.bias", (kv * hd,), 0.1)
    if arch in ("qwen3", "gemma3"):
        out.add_tensor(p + "attn_q_norm.weight", (1 + 0.1 * rng.standard_normal(hd)).astype(np.float32))
        out.add_tensor(p + "attn_k_norm.weight", (1 + 0.1 * rng.standard_normal(hd)).astype(np.float32))
    t(p + "attn_output.weight", (d, d), 0.3)
    if arch == "gemma3":
        out.add_tensor(p + "post_attention_norm.weight", np.ones(d, np.float32))
        out.add_tensor(p + "post_ffw_norm.weight", np.ones(d, np.float32))
    out.add_tensor(p + "ffn_norm.weight", np.ones(d, np.float32))
    if arch == "phi3":
        t(p + "ffn_up.weight", (2 * ff, d), 0.3)
    else:
        t(p + "ffn_gate.weight", (ff, d), 0.3); t(p + "ffn_up.weight", (ff, d), 0.3)
    t(p + "ffn_down.weight", (d, ff), 0.3)
out.add_tensor("output_norm.weight", np.ones(d, np.float32))
t("output.weight", (vocab, d), 1.0)
out.write_header_to_file(); out.write_kv_data_to_file(); out.write_tensors_to_file(); out.close()
print("wrote", sys.argv[2], "vocab", vocab)
