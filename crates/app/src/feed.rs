//! Live post feed: newest first, sentiment badges, engagement counts and
//! like / share buttons. Post text is only ever rendered as text nodes.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::format::clock_time;
use crate::panel::PanelHead;
use crate::rpc_error::RpcError;
use pulse_core::model::Counts;
use pulse_core::model::EngagementKind;
use pulse_core::protocol::{EngagementEvent, FeedPost};

/// Posts kept in the feed.
pub const FEED_WINDOW: usize = 40;
/// Posts the feed may hold once older ones were loaded from history.
pub const MAX_FEED: usize = 200;
/// Older posts fetched per "Show older posts".
pub const OLDER_PAGE: usize = 20;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FeedState {
    /// Newest (highest id) first.
    pub posts: Vec<FeedPost>,
    /// How many posts are kept: [`FEED_WINDOW`], more once older posts were
    /// loaded or while they load (up to [`MAX_FEED`]).
    pub capacity: usize,
    /// Older posts were loaded: live posts now grow the window instead of
    /// pushing out what the reader asked for.
    pub kept_older: bool,
    /// The `before` of the older page being loaded. While it is in flight
    /// live posts grow the window instead of evicting the oldest post, so the
    /// page joins up with what is shown and the feed never gets a hole.
    pub loading_before: Option<u64>,
}

impl Default for FeedState {
    fn default() -> Self {
        Self::new(Vec::new())
    }
}

impl FeedState {
    pub fn new(mut posts: Vec<FeedPost>) -> Self {
        posts.sort_by_key(|p| std::cmp::Reverse(p.post.id));
        posts.truncate(FEED_WINDOW);
        Self {
            posts,
            capacity: FEED_WINDOW,
            kept_older: false,
            loading_before: None,
        }
    }

    /// The oldest post shown (where "Show older posts" continues).
    pub fn oldest_id(&self) -> Option<u64> {
        self.posts.last().map(|p| p.post.id)
    }

    /// Whether "Show older posts" can load more right now.
    pub fn can_load_older(&self) -> bool {
        self.loading_before.is_none() && !self.posts.is_empty() && self.posts.len() < MAX_FEED
    }

    /// Starts loading the page below the oldest post; returns its `before`,
    /// or `None` when nothing can be loaded now.
    pub fn begin_older(&mut self) -> Option<u64> {
        if !self.can_load_older() {
            return None;
        }
        self.loading_before = self.oldest_id();
        self.loading_before
    }

    /// Adds the page loaded for `before` below the current posts. A page for
    /// a feed that was replaced meanwhile (a snapshot reload) is dropped: it
    /// would not join up with the posts shown now.
    pub fn append_older(&mut self, before: u64, older: Vec<FeedPost>) {
        if self.loading_before != Some(before) {
            return;
        }
        self.loading_before = None;
        if older.is_empty() {
            self.settle();
            return;
        }
        self.kept_older = true;
        self.capacity = (self.capacity + older.len()).min(MAX_FEED);
        for post in older {
            self.apply_post(post);
        }
    }

    /// The page for `before` failed: "Show older posts" can be tried again.
    pub fn abandon_older(&mut self, before: u64) {
        if self.loading_before == Some(before) {
            self.loading_before = None;
            self.settle();
        }
    }

    /// Back to the live window when nothing older is kept (the window may
    /// have grown while a page was loading).
    fn settle(&mut self) {
        if !self.kept_older {
            self.capacity = FEED_WINDOW;
            self.posts.truncate(FEED_WINDOW);
        }
    }

    pub fn get(&self, id: u64) -> Option<&FeedPost> {
        self.posts.iter().find(|p| p.post.id == id)
    }

    /// Inserts a post in id order (a replayed one replaces itself), keeping the newest.
    pub fn apply_post(&mut self, post: FeedPost) {
        match self
            .posts
            .binary_search_by(|p| post.post.id.cmp(&p.post.id))
        {
            Ok(index) => self.posts[index] = post,
            Err(index) => self.posts.insert(index, post),
        }
        // Once older posts were asked for, live posts grow the window rather
        // than push out what the reader loaded (or is loading) below.
        let expanded = self.loading_before.is_some() || self.kept_older;
        if expanded && self.posts.len() > self.capacity {
            self.capacity = (self.capacity + 1).min(MAX_FEED);
        }
        self.posts.truncate(self.capacity);
    }

    /// Sets a post's counts to the totals an engagement event carries.
    pub fn apply_engagement(&mut self, event: &EngagementEvent) {
        if let Some(post) = self.posts.iter_mut().find(|p| p.post.id == event.post_id) {
            post.engagement = event.totals;
        }
    }
}

/// Posts older than `before`, newest first, from storage (so the feed can
/// reach further back than the server keeps in memory).
#[server(prefix = "/rpc", endpoint = "older_posts", client = crate::rpc_client::RpcClient)]
pub async fn load_older_posts(before: u64) -> Result<Vec<FeedPost>, RpcError> {
    crate::backend::backend()?.older_posts(before).await
}

/// What a click on like or share did: the post's new counts, and whether
/// this session now has the reaction on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reacted {
    #[serde(flatten)]
    pub totals: Counts,
    pub on: bool,
}

/// Likes or shares a post for everyone, once per session: a second click
/// undoes the first (counts also arrive on `engagement`). Comments are not
/// reactions and are refused.
#[server(prefix = "/rpc", endpoint = "react_to_post", client = crate::rpc_client::RpcClient)]
pub async fn react_to_post(post_id: u64, kind: EngagementKind) -> Result<Reacted, RpcError> {
    crate::backend::backend()?.react(post_id, kind).await
}

pub const HEART: &str = "M12 21s-7.5-4.6-9.5-9.1C1.1 8.6 3.2 5 6.6 5c2 0 3.4 1.1 4.4 2.6h2C14 6.1 15.4 5 17.4 5c3.4 0 5.5 3.6 4.1 6.9C19.5 16.4 12 21 12 21z";
pub const SHARE: &str = "M4 12v7a1 1 0 0 0 1 1h14a1 1 0 0 0 1-1v-7M12 3v12M7 8l5-5 5 5";
pub const COMMENT: &str = "M4 5h16v11H9l-5 4z";

/// Like or share a post for everyone; a second click takes it back. Shown
/// pressed while this session has it on (as the server last answered; a
/// reloaded page starts unpressed).
#[component]
fn ReactButton(
    id: u64,
    kind: EngagementKind,
    author: String,
    count: Signal<i64>,
    error: RwSignal<Option<String>>,
) -> impl IntoView {
    let (class, verb, icon, testid) = match kind {
        EngagementKind::Like => ("react like", "Like", HEART, "likes"),
        EngagementKind::Share => ("react share", "Share", SHARE, "shares"),
        EngagementKind::Comment => ("react comment", "Comment on", COMMENT, "comments"),
    };
    let pressed = RwSignal::new(false);
    let sending = RwSignal::new(false);
    let react = move |_| {
        if sending.get_untracked() {
            return;
        }
        sending.set(true);
        error.set(None);
        leptos::task::spawn_local(async move {
            match react_to_post(id, kind).await {
                Ok(reacted) => pressed.set(reacted.on),
                Err(e) => error.set(Some(format!("Could not send your reaction: {e}"))),
            }
            sending.set(false);
        });
    };
    view! {
        <button
            type="button"
            class=class
            aria-label=format!("{verb} post by {author}")
            aria-pressed=move || pressed.get().to_string()
            on:click=react
        >
            <Icon path=icon/>
            <span class="count" data-testid=testid>{move || count.get()}</span>
        </button>
    }
}

/// A small outline icon (decorative; the button's label says what it does).
#[component]
pub fn Icon(path: &'static str) -> impl IntoView {
    view! {
        <svg class="icon" viewBox="0 0 24 24" aria-hidden="true" focusable="false">
            <path d=path fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round"/>
        </svg>
    }
}

#[component]
pub fn FeedPanel(feed: RwSignal<FeedState>) -> impl IntoView {
    let ids =
        Memo::new(move |_| feed.with(|f| f.posts.iter().map(|p| p.post.id).collect::<Vec<_>>()));
    let error = RwSignal::new(None::<String>);
    let loading_older = Memo::new(move |_| feed.with(|f| f.loading_before.is_some()));
    let show_older = move |_| {
        let Some(before) = feed.try_update(FeedState::begin_older).flatten() else {
            return;
        };
        error.set(None);
        leptos::task::spawn_local(async move {
            match load_older_posts(before).await {
                Ok(older) => feed.update(|f| f.append_older(before, older)),
                Err(e) => {
                    feed.update(|f| f.abandon_older(before));
                    error.set(Some(format!("Could not load older posts: {e}")));
                }
            }
        });
    };
    view! {
        <section class="panel feed-panel" aria-labelledby="feed-heading" data-testid="feed">
            <PanelHead id="feed-heading" title="Live feed" hint="Newest first"/>
            {move || error.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
            <ol class="feed" aria-label="Posts">
                <For each=move || ids.get() key=|id| *id let:id>
                    <FeedItem feed id error/>
                </For>
            </ol>
            <button
                type="button"
                class="older"
                data-testid="older-posts"
                disabled=move || feed.with(|f| !f.can_load_older())
                on:click=show_older
            >
                {move || if loading_older.get() { "Loading…" } else { "Show older posts" }}
            </button>
        </section>
    }
    .into_any()
}

#[component]
fn FeedItem(feed: RwSignal<FeedState>, id: u64, error: RwSignal<Option<String>>) -> impl IntoView {
    // Everything but the counts is immutable once posted.
    let Some(post) = feed.with_untracked(|f| f.get(id).map(|p| p.post.clone())) else {
        return ().into_any();
    };
    let counts =
        Memo::new(move |_| feed.with(|f| f.get(id).map(|p| p.engagement).unwrap_or_default()));
    let label = post.sentiment.label.as_str();
    let author = post.author.clone();
    view! {
        <li class="post" data-post-id=id.to_string() data-sentiment=label>
            <div class="post-head">
                <span class="author">{post.author.clone()}</span>
                <time class="post-time" title="UTC">{clock_time(post.ts)}</time>
                <span class=format!("badge badge-{label}") data-testid="post-sentiment">{label}</span>
                <span class="score" title="Compound score">{format!("{:+.2}", post.sentiment.compound)}</span>
            </div>
            <p class="post-text">{post.text.clone()}</p>
            {(!post.symbols.is_empty()).then(|| view! {
                <p class="post-symbols">{post.symbols.iter().map(|s| format!("${s}")).collect::<Vec<_>>().join(" ")}</p>
            })}
            <div class="post-actions">
                <ReactButton id kind=EngagementKind::Like author=author.clone() count=Signal::derive(move || counts.get().likes) error/>
                <ReactButton id kind=EngagementKind::Share author count=Signal::derive(move || counts.get().shares) error/>
                <span class="comments" title="Comments">
                    <Icon path=COMMENT/>
                    <span class="count" data-testid="comments">{move || counts.get().comments}</span>
                    <span class="sr-only">" comments"</span>
                </span>
            </div>
        </li>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;
    use pulse_core::model::{Post, Sentiment};

    fn post(id: u64) -> FeedPost {
        FeedPost {
            post: Post {
                id,
                author: "ann".into(),
                text: "<b>hi</b>".into(),
                ts: 1,
                sentiment: Sentiment::NEUTRAL,
                symbols: vec![],
            },
            engagement: Counts::default(),
        }
    }

    #[test]
    fn newest_first_without_duplicates_and_capped() {
        let mut feed = FeedState::new(vec![post(2), post(5), post(3)]);
        assert_eq!(
            feed.posts.iter().map(|p| p.post.id).collect::<Vec<_>>(),
            [5, 3, 2]
        );
        feed.apply_post(post(4));
        feed.apply_post(post(5));
        assert_eq!(
            feed.posts.iter().map(|p| p.post.id).collect::<Vec<_>>(),
            [5, 4, 3, 2]
        );
        for id in 10..(10 + FEED_WINDOW as u64) {
            feed.apply_post(post(id));
        }
        assert_eq!(feed.posts.len(), FEED_WINDOW);
        assert_eq!(feed.posts[0].post.id, 9 + FEED_WINDOW as u64);
    }

    fn ids(feed: &FeedState) -> Vec<u64> {
        feed.posts.iter().map(|p| p.post.id).collect()
    }

    /// Loads the page below the oldest post, as the button does.
    fn load_older(feed: &mut FeedState, older: impl Iterator<Item = u64>) {
        let before = feed.begin_older().expect("a page can be loaded");
        feed.append_older(before, older.map(post).collect());
    }

    #[test]
    fn older_posts_extend_the_feed_up_to_its_limit() {
        let mut feed = FeedState::new((100..100 + FEED_WINDOW as u64).map(post).collect());
        assert_eq!(feed.oldest_id(), Some(100));
        load_older(&mut feed, (80..100).rev());
        assert_eq!(feed.posts.len(), FEED_WINDOW + 20);
        assert_eq!(feed.oldest_id(), Some(80));
        // A live post now keeps the older ones: the window grows.
        feed.apply_post(post(500));
        assert_eq!(feed.posts.len(), FEED_WINDOW + 21);
        assert_eq!(feed.posts[0].post.id, 500);
        assert_eq!(feed.oldest_id(), Some(80));
        for start in [60, 40, 20, 0] {
            load_older(&mut feed, (start..start + 20).rev());
        }
        assert_eq!(feed.posts.len(), FEED_WINDOW + 101);
        assert_eq!(feed.oldest_id(), Some(0));
    }

    #[test]
    fn the_feed_stops_growing_at_its_limit() {
        let mut feed = FeedState::new((1000..1000 + FEED_WINDOW as u64).map(post).collect());
        while feed.can_load_older() {
            let oldest = feed.oldest_id().unwrap();
            load_older(&mut feed, (oldest - 20..oldest).rev());
        }
        assert_eq!(feed.posts.len(), MAX_FEED);
        assert_eq!(feed.begin_older(), None);
        // At the limit, live posts push the oldest out again.
        feed.apply_post(post(5000));
        assert_eq!(feed.posts.len(), MAX_FEED);
        assert_eq!(feed.posts[0].post.id, 5000);
    }

    #[test]
    fn live_posts_during_a_load_leave_no_hole() {
        let mut feed = FeedState::new((100..100 + FEED_WINDOW as u64).map(post).collect());
        let before = feed.begin_older().unwrap();
        assert_eq!(before, 100);
        // A second click while the first page is in flight does nothing.
        assert_eq!(feed.begin_older(), None);
        // Live posts arrive before the page does: nothing is pushed out.
        feed.apply_post(post(500));
        feed.apply_post(post(501));
        assert_eq!(feed.oldest_id(), Some(100));
        feed.append_older(before, (80..100).rev().map(post).collect());
        let shown = ids(&feed);
        assert_eq!(shown.len(), FEED_WINDOW + 22);
        assert_eq!(shown[..2], [501, 500]);
        assert_eq!(
            shown[2..],
            (80..100 + FEED_WINDOW as u64).rev().collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_page_for_a_replaced_feed_is_dropped() {
        let mut feed = FeedState::new((100..140).map(post).collect());
        let before = feed.begin_older().unwrap();
        // A snapshot reload replaces the feed while the page is in flight.
        feed = FeedState::new((200..240).map(post).collect());
        feed.append_older(before, (80..100).rev().map(post).collect());
        assert_eq!(ids(&feed), (200..240).rev().collect::<Vec<_>>());
        assert!(feed.can_load_older());
    }

    #[test]
    fn a_failed_load_can_be_retried() {
        let mut feed = FeedState::new((100..140).map(post).collect());
        let before = feed.begin_older().unwrap();
        feed.abandon_older(before);
        assert_eq!(feed.begin_older(), Some(100));
    }

    #[test]
    fn a_load_that_brings_nothing_leaves_the_live_window_as_it_was() {
        for failed in [true, false] {
            let mut feed = FeedState::new((100..140).map(post).collect());
            let before = feed.begin_older().unwrap();
            // Live posts while loading grow the window...
            feed.apply_post(post(500));
            feed.apply_post(post(501));
            assert_eq!(feed.posts.len(), FEED_WINDOW + 2);
            // ...but a failed or empty page keeps nothing older: back to the window.
            if failed {
                feed.abandon_older(before);
            } else {
                feed.append_older(before, Vec::new());
            }
            assert_eq!(feed.posts.len(), FEED_WINDOW);
            assert_eq!(feed.posts[0].post.id, 501);
            feed.apply_post(post(502));
            assert_eq!(
                feed.posts.len(),
                FEED_WINDOW,
                "live posts push out the oldest again"
            );
        }
    }

    #[test]
    fn engagement_sets_totals() {
        let mut feed = FeedState::new(vec![post(1)]);
        let totals = Counts {
            likes: 3,
            shares: 1,
            comments: 0,
        };
        feed.apply_engagement(&EngagementEvent {
            post_id: 1,
            kind: EngagementKind::Like,
            delta: 1,
            ts: 2,
            totals,
        });
        feed.apply_engagement(&EngagementEvent {
            post_id: 99,
            kind: EngagementKind::Like,
            delta: 1,
            ts: 2,
            totals,
        });
        assert_eq!(feed.get(1).unwrap().engagement, totals);
    }
}
