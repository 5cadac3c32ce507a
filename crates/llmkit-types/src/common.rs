//! Shared wire pieces: lenient string enums (role, finish reason, service tier) and usage.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Declares a string enum whose unknown values decode into `Other(String)` instead of failing.
///
/// Compatible servers (vLLM, llama.cpp, Azure, Groq...) send values OpenAI never documented,
/// such as `finish_reason: ""` or `service_tier: "on_demand"`; a strict enum would reject the
/// whole response.
macro_rules! lenient_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $($variant,)+
            /// A value this version of llmkit does not know, kept verbatim.
            Other(String),
        }

        impl $name {
            /// The wire string for this value.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $text,)+
                    Self::Other(s) => s,
                }
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                match s {
                    $($text => Self::$variant,)+
                    other => Self::Other(other.to_string()),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let s = String::deserialize(deserializer)?;
                Ok(Self::from(s.as_str()))
            }
        }
    };
}

lenient_enum!(
    /// The author of a chat message.
    Role {
        System => "system",
        Developer => "developer",
        User => "user",
        Assistant => "assistant",
        Tool => "tool",
        Function => "function",
    }
);

// Written by hand because the variants come from `lenient_enum!`, where `#[default]` cannot go.
#[allow(clippy::derivable_impls)]
impl Default for Role {
    fn default() -> Self {
        Self::Assistant
    }
}

lenient_enum!(
    /// Why the model stopped generating.
    FinishReason {
        Stop => "stop",
        Length => "length",
        ToolCalls => "tool_calls",
        ContentFilter => "content_filter",
        FunctionCall => "function_call",
    }
);

lenient_enum!(
    /// The processing tier that served a request.
    ServiceTier {
        Auto => "auto",
        Default => "default",
        Flex => "flex",
        Scale => "scale",
        Priority => "priority",
    }
);

/// Token usage reported by the server.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    #[serde(default)]
    pub prompt_tokens: u64,
    #[serde(default)]
    pub completion_tokens: u64,
    #[serde(default)]
    pub total_tokens: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens_details: Option<PromptTokensDetails>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_tokens_details: Option<CompletionTokensDetails>,
}

impl Usage {
    /// Usage with the total computed from its parts.
    pub fn new(prompt_tokens: u64, completion_tokens: u64) -> Self {
        Self {
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens + completion_tokens,
            ..Self::default()
        }
    }

    /// Prompt tokens served from the provider's prompt cache (0 when not reported).
    pub fn cached_tokens(&self) -> u64 {
        self.prompt_tokens_details
            .as_ref()
            .and_then(|d| d.cached_tokens)
            .unwrap_or(0)
    }
}

/// Breakdown of prompt tokens.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PromptTokensDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_tokens: Option<u64>,
}

/// Breakdown of completion tokens.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CompletionTokensDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted_prediction_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected_prediction_tokens: Option<u64>,
}

/// Deserializes `null` as the type's default, for fields servers sometimes send as null.
pub(crate) fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_values_decode_into_other() {
        let f: FinishReason = serde_json::from_str("\"\"").unwrap();
        assert_eq!(f, FinishReason::Other(String::new()));
        let t: ServiceTier = serde_json::from_str("\"on_demand\"").unwrap();
        assert_eq!(t, ServiceTier::Other("on_demand".into()));
        assert_eq!(serde_json::to_string(&t).unwrap(), "\"on_demand\"");
    }

    #[test]
    fn known_values_round_trip() {
        for s in [
            "stop",
            "length",
            "tool_calls",
            "content_filter",
            "function_call",
        ] {
            let f: FinishReason = serde_json::from_str(&format!("\"{s}\"")).unwrap();
            assert!(!matches!(f, FinishReason::Other(_)));
            assert_eq!(f.as_str(), s);
        }
    }
}
