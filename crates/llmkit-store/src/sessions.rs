//! Conversations: sessions (named or not, from `chat` and `ask`) and their messages.

use rusqlite::{OptionalExtension, Row, params};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use llmkit_types::{ChatMessage, ContentPart, MessageContent, Role, ToolCall};

use crate::db::Store;
use crate::error::StoreError;
use crate::ledger::now_secs;

/// One conversation.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Session {
    pub id: String,
    pub name: Option<String>,
    /// `chat` or `ask`.
    pub kind: String,
    pub model: Option<String>,
    pub system: Option<String>,
    /// Running summary of turns no longer sent in full (context strategy `summarize`).
    pub summary: Option<String>,
    /// Messages with a smaller id are no longer sent (dropped or summarised).
    pub context_from: i64,
    pub created: f64,
    pub updated: f64,
}

/// One stored message (`user`, `assistant` or `tool`; the system prompt lives on the
/// session).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Message {
    pub id: i64,
    pub role: String,
    pub content: String,
    pub created: f64,
    /// The tools an assistant turn called.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCall>>,
    /// The call a `tool` message answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    /// A user message's image, file and audio parts (its text is `content`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<ContentPart>,
    /// The message's extra fields, sent back with it (an assistant turn's encrypted
    /// reasoning items).
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    pub extra: serde_json::Map<String, Value>,
}

/// A session with its message count, for listings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionSummary {
    #[serde(flatten)]
    pub session: Session,
    pub messages: u64,
}

const SESSION_COLUMNS: &str =
    "id, name, kind, model, system, summary, context_from, created, updated";

fn session_from_row(r: &Row<'_>) -> rusqlite::Result<Session> {
    Ok(Session {
        id: r.get(0)?,
        name: r.get(1)?,
        kind: r.get(2)?,
        model: r.get(3)?,
        system: r.get(4)?,
        summary: r.get(5)?,
        context_from: r.get(6)?,
        created: r.get(7)?,
        updated: r.get(8)?,
    })
}

impl Store {
    /// Creates a session. A `name` already in use is taken from the older session.
    pub fn create_session(
        &self,
        name: Option<&str>,
        kind: &str,
        model: Option<&str>,
        system: Option<&str>,
    ) -> Result<Session, StoreError> {
        let now = now_secs();
        let id = new_id(now);
        self.write(|tx| {
            if let Some(n) = name {
                tx.execute("UPDATE sessions SET name = NULL WHERE name = ?1", [n])?;
            }
            tx.execute(
                "INSERT INTO sessions (id, name, kind, model, system, created, updated)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
                params![id, name, kind, model, system, now],
            )?;
            Ok(())
        })?;
        Ok(Session {
            id,
            name: name.map(str::to_string),
            kind: kind.to_string(),
            model: model.map(str::to_string),
            system: system.map(str::to_string),
            summary: None,
            context_from: 0,
            created: now,
            updated: now,
        })
    }

    /// The session with this name, else this id, else the only id starting with it.
    pub fn find_session(&self, name_or_id: &str) -> Result<Option<Session>, StoreError> {
        let conn = self.conn();
        let by = |sql: &str, arg: &str| -> Result<Vec<Session>, StoreError> {
            let mut stmt = conn.prepare(sql)?;
            let rows = stmt.query_map([arg], session_from_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        };
        let q = |w: &str| format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE {w}");
        for (sql, arg) in [
            (q("name = ?1"), name_or_id.to_string()),
            (q("id = ?1"), name_or_id.to_string()),
            (q("id LIKE ?1 || '%'"), name_or_id.replace(['%', '_'], "")),
        ] {
            if arg.is_empty() {
                continue;
            }
            let found = by(&sql, &arg)?;
            if found.len() == 1 {
                return Ok(found.into_iter().next());
            }
        }
        Ok(None)
    }

    /// Like [`Store::find_session`], but a missing session is an error.
    pub fn get_session(&self, name_or_id: &str) -> Result<Session, StoreError> {
        self.find_session(name_or_id)?
            .ok_or_else(|| StoreError::NoSession(name_or_id.to_string()))
    }

    /// The most recently updated session.
    pub fn latest_session(&self) -> Result<Option<Session>, StoreError> {
        let conn = self.conn();
        Ok(conn
            .query_row(
                &format!("SELECT {SESSION_COLUMNS} FROM sessions ORDER BY updated DESC, rowid DESC LIMIT 1"),
                [],
                session_from_row,
            )
            .optional()?)
    }

    /// Every session, most recent first, with message counts.
    pub fn list_sessions(&self) -> Result<Vec<SessionSummary>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {SESSION_COLUMNS}, (SELECT COUNT(*) FROM messages m WHERE m.session_id = s.id)
             FROM sessions s ORDER BY updated DESC, rowid DESC"
        ))?;
        let rows = stmt.query_map([], |r| {
            Ok(SessionSummary {
                session: session_from_row(r)?,
                messages: r.get::<_, i64>(9)? as u64,
            })
        })?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.map_err(e))
    }

    /// Appends a message and touches the session; returns the message id.
    pub fn add_message(
        &self,
        session_id: &str,
        role: &str,
        content: &str,
    ) -> Result<i64, StoreError> {
        self.insert_message(session_id, role, content, [None, None, None, None])
    }

    /// Appends a tool turn: an assistant message with tool calls, or a `tool` result.
    pub fn add_chat_message(&self, session_id: &str, m: &ChatMessage) -> Result<i64, StoreError> {
        let role = match m.role {
            Role::Assistant => "assistant",
            Role::Tool => "tool",
            Role::System => "system",
            _ => "user",
        };
        let calls = match &m.tool_calls {
            Some(c) if !c.is_empty() => Some(serde_json::to_string(c)?),
            _ => None,
        };
        let attachments: Vec<&ContentPart> = match &m.content {
            Some(MessageContent::Parts(parts)) => parts
                .iter()
                .filter(|p| !matches!(p, ContentPart::Text { .. }))
                .collect(),
            _ => Vec::new(),
        };
        let attachments = if attachments.is_empty() {
            None
        } else {
            Some(serde_json::to_string(&attachments)?)
        };
        let extra = if m.extra.is_empty() {
            None
        } else {
            Some(serde_json::to_string(&m.extra)?)
        };
        self.insert_message(
            session_id,
            role,
            &m.text_content(),
            [
                calls.as_deref(),
                m.tool_call_id.as_deref(),
                attachments.as_deref(),
                extra.as_deref(),
            ],
        )
    }

    fn insert_message(
        &self,
        session_id: &str,
        role: &str,
        content: &str,
        // The JSON columns: tool calls, the answered call's id, attachments, extra fields.
        [tool_calls, tool_call_id, attachments, extra]: [Option<&str>; 4],
    ) -> Result<i64, StoreError> {
        let now = now_secs();
        self.write(|tx| {
            tx.execute(
                "INSERT INTO messages
                   (session_id, role, content, created, tool_calls, tool_call_id, attachments,
                    extra)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    session_id,
                    role,
                    content,
                    now,
                    tool_calls,
                    tool_call_id,
                    attachments,
                    extra
                ],
            )?;
            let id = tx.last_insert_rowid();
            tx.execute(
                "UPDATE sessions SET updated = ?2 WHERE id = ?1",
                params![session_id, now],
            )?;
            Ok(id)
        })
    }

    /// The session's messages, oldest first.
    pub fn messages(&self, session_id: &str) -> Result<Vec<Message>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT id, role, content, created, tool_calls, tool_call_id, attachments, extra
             FROM messages WHERE session_id = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([session_id], |r| {
            // A row this build cannot read back as tool calls keeps its text.
            let calls: Option<String> = r.get(4)?;
            Ok(Message {
                id: r.get(0)?,
                role: r.get(1)?,
                content: r.get(2)?,
                created: r.get(3)?,
                tool_calls: calls.and_then(|c| serde_json::from_str(&c).ok()),
                tool_call_id: r.get(5)?,
                attachments: r
                    .get::<_, Option<String>>(6)?
                    .and_then(|a| serde_json::from_str(&a).ok())
                    .unwrap_or_default(),
                extra: r
                    .get::<_, Option<String>>(7)?
                    .and_then(|a| serde_json::from_str(&a).ok())
                    .unwrap_or_default(),
            })
        })?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.map_err(e))
    }

    /// Saves the session's model, system prompt, summary and context start.
    pub fn update_session(&self, s: &Session) -> Result<(), StoreError> {
        let now = now_secs();
        self.write(|tx| {
            tx.execute(
                "UPDATE sessions SET model = ?2, system = ?3, summary = ?4, context_from = ?5, updated = ?6 WHERE id = ?1",
                params![s.id, s.model, s.system, s.summary, s.context_from, now],
            )?;
            Ok(())
        })
    }

    /// Gives the session a name (taking it from any other session that had it).
    pub fn rename_session(&self, session_id: &str, name: &str) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute("UPDATE sessions SET name = NULL WHERE name = ?1", [name])?;
            tx.execute(
                "UPDATE sessions SET name = ?2 WHERE id = ?1",
                params![session_id, name],
            )?;
            Ok(())
        })
    }

    /// Deletes the session's messages and summary (`/clear`).
    pub fn clear_session(&self, session_id: &str) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute("DELETE FROM messages WHERE session_id = ?1", [session_id])?;
            tx.execute(
                "UPDATE sessions SET summary = NULL, context_from = 0 WHERE id = ?1",
                [session_id],
            )?;
            Ok(())
        })
    }

    /// Deletes messages from id `from` on (for `/retry`).
    pub fn truncate_messages(&self, session_id: &str, from: i64) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM messages WHERE session_id = ?1 AND id >= ?2",
                params![session_id, from],
            )?;
            Ok(())
        })
    }

    /// Deletes a session and its messages; false when there was none.
    pub fn delete_session(&self, session_id: &str) -> Result<bool, StoreError> {
        self.write(|tx| {
            tx.execute("DELETE FROM messages WHERE session_id = ?1", [session_id])?;
            Ok(tx.execute("DELETE FROM sessions WHERE id = ?1", [session_id])? > 0)
        })
    }

    /// A session and its messages as JSON.
    pub fn session_json(&self, session_id: &str) -> Result<Value, StoreError> {
        let s = self.get_session(session_id)?;
        let messages = self.messages(&s.id)?;
        let mut v = serde_json::to_value(&s)?;
        if let Value::Object(m) = &mut v {
            m.insert("messages".into(), json!(messages));
        }
        Ok(v)
    }
}

/// A short random-enough id: time, process id and a counter, hashed.
fn new_id(now: f64) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let seed = format!(
        "{now}-{}-{n}-{:?}",
        std::process::id(),
        std::thread::current().id()
    );
    let digest = Sha256::digest(seed.as_bytes());
    digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
}
