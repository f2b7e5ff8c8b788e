//! Compose box: author and text, a sentiment preview computed in the browser
//! by the same analyzer the server uses, and submission through a server function.

use std::sync::Arc;

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use serde::{Deserialize, Serialize};

use crate::panel::PanelHead;
use crate::rpc_error::RpcError;
use pulse_core::analytics::sentiment::{Extensions, LexiconData, SentimentAnalyzer};
use pulse_core::model::{NewPost, Sentiment, ValidationError, MAX_AUTHOR_CHARS, MAX_POST_CHARS};

/// A post the server accepted (it is on disk and published).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Posted {
    pub id: u64,
    pub sentiment: Sentiment,
}

/// Field errors of a draft, checked in the browser before anything is sent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldErrors {
    pub author: Option<String>,
    pub text: Option<String>,
}

impl FieldErrors {
    pub fn is_empty(&self) -> bool {
        self.author.is_none() && self.text.is_none()
    }

    fn set(&mut self, field: &str, message: String) {
        match field {
            "author" => self.author = Some(message),
            _ => self.text = Some(message),
        }
    }
}

fn message(error: &ValidationError) -> String {
    let field = match error.field {
        "author" => "Name",
        "text" => "Post",
        other => other,
    };
    format!("{field} {}.", error.message)
}

/// Validates a draft with the model's rules (author checked first, then text).
pub fn validate_draft(author: &str, text: &str) -> FieldErrors {
    let mut errors = FieldErrors::default();
    let check = |author: &str, text: &str| {
        NewPost {
            author: author.to_owned(),
            text: text.to_owned(),
            ts: None,
        }
        .validate(0)
    };
    // Check each field on its own so both errors show at once.
    if let Err(e) = check(author, "x") {
        errors.set(e.field, message(&e));
    }
    if let Err(e) = check("x", text) {
        errors.set(e.field, message(&e));
    }
    errors
}

/// Sentiment preview; `None` until there is text.
pub fn preview(analyzer: &SentimentAnalyzer, text: &str) -> Option<Sentiment> {
    (!text.trim().is_empty()).then(|| analyzer.analyze(text))
}

/// The analyzer's data files, for the browser's preview.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentimentData {
    pub valence_tsv: String,
    pub emoji_tsv: String,
}

impl SentimentData {
    /// The server's own copy (and the tests').
    #[cfg(any(feature = "ssr", test))]
    pub fn embedded() -> Self {
        use pulse_core::analytics::sentiment::EMBEDDED_LEXICON;
        Self {
            valence_tsv: EMBEDDED_LEXICON.valence_tsv.to_owned(),
            emoji_tsv: EMBEDDED_LEXICON.emoji_tsv.to_owned(),
        }
    }

    pub fn analyzer(&self) -> SentimentAnalyzer {
        let data = LexiconData {
            valence_tsv: &self.valence_tsv,
            emoji_tsv: &self.emoji_tsv,
        };
        SentimentAnalyzer::from_data(data, Extensions::RECOMMENDED)
    }
}

/// The same data the server scores with. The browser asks for it when the
/// compose box is first used, so it is not part of the WASM every visitor
/// downloads (~41 KB gzipped). Cached, but revalidated on every use: the URL
/// stays the same when a deploy changes the data, the `ETag` does not.
#[server(prefix = "/rpc", endpoint = "sentiment_data", client = crate::rpc_client::RpcClient, input = GetUrl)]
pub async fn load_sentiment_data() -> Result<SentimentData, RpcError> {
    static ETAG: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let etag = ETAG.get_or_init(|| {
        use pulse_core::analytics::sentiment::EMBEDDED_LEXICON;
        use std::hash::{Hash, Hasher};
        let mut hasher = std::hash::DefaultHasher::new();
        EMBEDDED_LEXICON.valence_tsv.hash(&mut hasher);
        EMBEDDED_LEXICON.emoji_tsv.hash(&mut hasher);
        format!("\"{:016x}\"", hasher.finish())
    });
    let backend = crate::backend::backend()?;
    let unchanged = backend
        .request_header("if-none-match")
        .is_some_and(|tag| tag == *etag);
    // The browser keeps its copy; a 304 carries no body.
    let status = unchanged.then_some(304);
    backend.respond(status, &[("cache-control", "no-cache"), ("etag", etag)]);
    if unchanged {
        return Ok(SentimentData {
            valence_tsv: String::new(),
            emoji_tsv: String::new(),
        });
    }
    Ok(SentimentData::embedded())
}

/// Posts for everyone. A rejected field (the same rules the browser checks
/// first) is a 400 naming the field, with the message the form shows.
#[server(prefix = "/rpc", endpoint = "submit_post", client = crate::rpc_client::RpcClient)]
pub async fn submit_post(author: String, text: String) -> Result<Posted, RpcError> {
    let post = NewPost {
        author,
        text,
        ts: None,
    };
    // A post without its own time is valid or not whatever the clock says.
    if let Err(error) = post.validate(0) {
        return Err(RpcError::invalid(Some(error.field), message(&error)));
    }
    crate::backend::backend()?.submit_post(post).await
}

#[component]
pub fn ComposePanel() -> impl IntoView {
    let author = RwSignal::new(String::new());
    let text = RwSignal::new(String::new());
    let errors = RwSignal::new(FieldErrors::default());
    let status = RwSignal::new(None::<String>);
    let sending = RwSignal::new(false);
    // The analyzer for the preview, built once its data has arrived.
    let analyzer = RwSignal::new(None::<Arc<SentimentAnalyzer>>);
    let requested = StoredValue::new(false);
    let load_analyzer = move || {
        if requested.get_value() {
            return;
        }
        requested.set_value(true);
        leptos::task::spawn_local(async move {
            match load_sentiment_data().await {
                Ok(data) => analyzer.set(Some(Arc::new(data.analyzer()))),
                Err(e) => {
                    requested.set_value(false);
                    status.set(Some(format!("No sentiment preview: {e}")));
                }
            }
        });
    };
    let scored = Memo::new(move |_| {
        analyzer.with(|a| a.as_ref().and_then(|a| text.with(|t| preview(a, t))))
    });

    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if sending.get_untracked() {
            return;
        }
        let (a, t) = (author.get_untracked(), text.get_untracked());
        let found = validate_draft(&a, &t);
        status.set(None);
        if !found.is_empty() {
            errors.set(found);
            return;
        }
        errors.set(FieldErrors::default());
        sending.set(true);
        leptos::task::spawn_local(async move {
            match submit_post(a, t).await {
                Ok(Posted { id, sentiment }) => {
                    text.set(String::new());
                    status.set(Some(format!(
                        "Posted #{id} ({}).",
                        sentiment.label.as_str()
                    )));
                }
                Err(RpcError::Invalid {
                    field: Some(field),
                    message,
                }) => errors.update(|e| e.set(&field, message)),
                Err(e) => status.set(Some(format!("Could not post: {e}"))),
            }
            sending.set(false);
        });
    };

    let preview_label = move || match scored.get() {
        Some(s) => s.label.as_str(),
        None if analyzer.with(Option::is_none) && text.with(|t| !t.trim().is_empty()) => "loading",
        None => "neutral",
    };
    view! {
        <section class="panel compose-panel" aria-labelledby="compose-heading" data-testid="compose">
            <PanelHead id="compose-heading" title="Post an update"/>
            <form class="compose" on:submit=submit novalidate>
                <div class="field">
                    <label for="compose-author">"Name"</label>
                    <input
                        id="compose-author"
                        name="author"
                        type="text"
                        autocomplete="nickname"
                        maxlength=MAX_AUTHOR_CHARS.to_string()
                        placeholder="e.g. ann"
                        prop:value=move || author.get()
                        on:input=move |ev| author.set(event_target_value(&ev))
                        aria-invalid=move || errors.with(|e| e.author.is_some()).to_string()
                        aria-describedby="compose-author-error"
                    />
                    <p id="compose-author-error" class="field-error" data-testid="author-error" role="alert">
                        {move || errors.with(|e| e.author.clone())}
                    </p>
                </div>
                <div class="field">
                    <label for="compose-text">"Post"</label>
                    <textarea
                        id="compose-text"
                        name="text"
                        rows="3"
                        maxlength=MAX_POST_CHARS.to_string()
                        placeholder="What's moving? Use $AAPL to tag a symbol."
                        prop:value=move || text.get()
                        on:focus=move |_| load_analyzer()
                        on:input=move |ev| {
                            load_analyzer();
                            text.set(event_target_value(&ev));
                        }
                        aria-invalid=move || errors.with(|e| e.text.is_some()).to_string()
                        aria-describedby="compose-text-error compose-preview"
                    ></textarea>
                    <p id="compose-text-error" class="field-error" data-testid="text-error" role="alert">
                        {move || errors.with(|e| e.text.clone())}
                    </p>
                </div>
                <div class="compose-foot">
                    <p id="compose-preview" class="preview" aria-live="polite">
                        "Preview: "
                        <span class=move || format!("badge badge-{}", preview_label()) data-testid="preview-label">
                            {preview_label}
                        </span>
                        " "
                        <span class="score">
                            {move || scored.get().map_or_else(|| "—".to_owned(), |s| format!("{:+.2}", s.compound))}
                        </span>
                    </p>
                    <button type="submit" class="primary" disabled=move || sending.get()>
                        {move || if sending.get() { "Posting…" } else { "Post" }}
                    </button>
                </div>
                <p class="compose-status" role="status">{move || status.get()}</p>
            </form>
        </section>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;
    use pulse_core::model::SentimentLabel;

    #[test]
    fn empty_fields_are_reported_next_to_each_field() {
        let errors = validate_draft("", "   ");
        assert!(errors.author.unwrap().starts_with("Name must not be empty"));
        assert!(errors.text.unwrap().starts_with("Post must not be empty"));
        assert!(validate_draft("ann", "hello").is_empty());
        let long = "x".repeat(MAX_POST_CHARS + 1);
        assert!(validate_draft("ann", &long).text.is_some());
    }

    #[test]
    fn preview_scores_like_the_server_with_the_data_it_sends() {
        let browser = SentimentData::embedded().analyzer();
        assert_eq!(preview(&browser, "  "), None);
        for text in [
            "I love this, amazing gains!",
            "Terrible, awful crash. I hate it.",
            "$TSLA to the moon 🚀 but not without risk",
            "kind of meh, at least it's not a dump",
        ] {
            assert_eq!(
                preview(&browser, text),
                Some(SentimentAnalyzer::global().analyze(text)),
                "{text}"
            );
        }
        assert_eq!(
            preview(&browser, "Terrible, awful crash. I hate it.")
                .unwrap()
                .label,
            SentimentLabel::Negative
        );
    }
}
