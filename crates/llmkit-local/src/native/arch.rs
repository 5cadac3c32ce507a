//! What differs between the architectures the native engine runs, as data: the tensors each
//! one's files hold and how each rotates its heads (as llama.cpp's per-architecture graphs do).
//! The forward pass itself is one for all of them.

use crate::generate::Arch;

/// How this engine builds each architecture's graph (as llama.cpp does).
impl Arch {
    /// ggml's RoPE mode: llama's converted Q/K weights rotate adjacent pairs, the others the
    /// two halves of the rotated part (NeoX mode).
    pub(super) fn rope_style(self) -> RopeStyle {
        match self {
            Arch::Llama => RopeStyle::Adjacent,
            _ => RopeStyle::Halves,
        }
    }

    /// Whether `name` (without its `blk.N.` prefix for layer tensors) is a tensor this engine
    /// reads for the family. A file with any other tensor runs on candle.
    pub(super) fn knows(self, name: &str) -> bool {
        let global = matches!(
            name,
            "token_embd.weight" | "output.weight" | "output_norm.weight"
        ) || (self == Arch::Llama && name == "rope_freqs.weight");
        if global {
            return true;
        }
        let Some(rest) = name.strip_prefix("blk.") else {
            return false;
        };
        let Some((index, tensor)) = rest.split_once('.') else {
            return false;
        };
        if index.parse::<usize>().is_err() {
            return false;
        }
        let common = matches!(
            tensor,
            "attn_norm.weight"
                | "attn_output.weight"
                | "ffn_norm.weight"
                | "ffn_up.weight"
                | "ffn_down.weight"
        );
        let separate_qkv = matches!(
            tensor,
            "attn_q.weight" | "attn_k.weight" | "attn_v.weight" | "ffn_gate.weight"
        );
        common
            || match self {
                Arch::Llama => separate_qkv,
                Arch::Qwen2 => {
                    separate_qkv || matches!(tensor, "attn_q.bias" | "attn_k.bias" | "attn_v.bias")
                }
                Arch::Qwen3 => {
                    separate_qkv || matches!(tensor, "attn_q_norm.weight" | "attn_k_norm.weight")
                }
                // Phi-3 files fuse Q, K and V in `attn_qkv` and gate with up in `ffn_up`.
                Arch::Phi3 => tensor == "attn_qkv.weight",
                Arch::Gemma3 => {
                    separate_qkv
                        || matches!(
                            tensor,
                            "attn_q_norm.weight"
                                | "attn_k_norm.weight"
                                | "post_attention_norm.weight"
                                | "post_ffw_norm.weight"
                        )
                }
            }
    }
}

/// How RoPE pairs the values of a head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RopeStyle {
    /// ggml's normal mode: values `2i` and `2i + 1`.
    Adjacent,
    /// ggml's NeoX mode: values `i` and `i + n_rot / 2`.
    Halves,
}
