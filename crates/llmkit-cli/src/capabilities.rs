//! What llmkit remembers about the servers it talks to: the features a base URL rejected,
//! read from the store into the client's config and written back as the client learns them
//! (the client itself never touches the store).

use std::sync::Arc;

use llmkit_client::{CapabilityMemory, ClientConfig, Feature, Rejection};
use llmkit_store::Store;

use crate::app::notice;

/// How the notice of a fallback says to forget it.
pub(crate) const FORGET: &str = "`llmkit store capabilities --forget` resets it";

/// `cfg` with the capability fallbacks on and what `store` knows of its server.
pub(crate) fn configure(cfg: ClientConfig, store: Option<Arc<Store>>) -> ClientConfig {
    let Some(store) = store else {
        // Without a store nothing is remembered, but the fallbacks still work for this run.
        return cfg.fallbacks(Vec::new());
    };
    let base_url = server_key(&cfg.base_url);
    let known = match store.missing_features(Some(&base_url)) {
        Ok(rows) => rows
            .iter()
            .filter_map(|r| Feature::parse(&r.feature))
            .collect(),
        Err(e) => {
            notice(&format!(
                "warning: what is known about {base_url} could not be read: {e}"
            ));
            Vec::new()
        }
    };
    cfg.fallbacks(known)
        .capability_memory(Arc::new(StoreMemory { store, base_url }))
}

/// The base URL as the store keys it: without credentials, query or trailing slash.
pub(crate) fn server_key(base_url: &str) -> String {
    match url::Url::parse(base_url.trim()) {
        Ok(mut u) => {
            // Both setters only fail for URLs that cannot have credentials at all.
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.set_query(None);
            u.set_fragment(None);
            u.as_str().trim_end_matches('/').to_string()
        }
        Err(_) => base_url.trim().trim_end_matches('/').to_string(),
    }
}

/// The store as the client's memory for one base URL.
struct StoreMemory {
    store: Arc<Store>,
    base_url: String,
}

impl CapabilityMemory for StoreMemory {
    fn remember(&self, r: &Rejection) {
        let saved = self.store.remember_missing_feature(
            &self.base_url,
            r.feature.name(),
            r.status,
            &r.message,
        );
        if let Err(e) = saved {
            notice(&format!(
                "warning: could not remember that {} lacks {}: {e}",
                self.base_url, r.feature
            ));
        }
    }

    fn how_to_forget(&self) -> Option<String> {
        Some(FORGET.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_drop_credentials_and_trailing_slashes() {
        assert_eq!(
            server_key("http://user:pw@127.0.0.1:8000/v1/?x=1"),
            "http://127.0.0.1:8000/v1"
        );
        assert_eq!(
            server_key("https://api.example/v1"),
            "https://api.example/v1"
        );
    }

    #[test]
    fn what_is_learnt_is_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(&dir.path().join("s.db")).unwrap());
        let cfg = configure(
            ClientConfig::new("http://h:1/v1/"),
            Some(Arc::clone(&store)),
        );
        assert!(cfg.fallbacks && cfg.missing_features.is_empty());
        let memory = cfg.capability_memory.unwrap();
        memory.remember(&Rejection {
            feature: Feature::JsonSchema,
            status: 400,
            message: "no".into(),
        });
        let cfg = configure(ClientConfig::new("http://h:1/v1"), Some(store));
        assert_eq!(cfg.missing_features, [Feature::JsonSchema]);
        let bare = configure(ClientConfig::new("http://h:1/v1"), None);
        assert!(bare.fallbacks && bare.capability_memory.is_none());
    }
}
