//! How the browser calls the server functions: server_fn's `fetch`, but
//! with the session cookie (`credentials: "include"`). Same-origin pages
//! send it anyway; the static bundle calls its server cross-origin, where
//! `fetch` leaves cookies out unless told, and reactions (one like per
//! session, a second click undoes it) need the session.
//!
//! [`RpcClient`] is what every `#[server]` here names as its `client`; the
//! server's build (no browser) never sends requests and keeps server_fn's.

#[cfg(not(feature = "browser"))]
pub type RpcClient = leptos::server_fn::client::browser::BrowserClient;

#[cfg(feature = "browser")]
pub use browser::RpcClient;

#[cfg(feature = "browser")]
mod browser {
    use std::future::Future;

    use futures_util::{Sink, Stream};
    use gloo_net::http::Response;
    use leptos::server_fn::client::browser::BrowserClient;
    use leptos::server_fn::client::Client;
    use leptos::server_fn::error::{FromServerFnError, IntoAppError, ServerFnErrorErr};
    use leptos::server_fn::request::browser::BrowserRequest;
    use leptos::server_fn::response::ClientRes;
    use leptos::server_fn::Bytes;
    use send_wrapper::SendWrapper;
    use wasm_bindgen::JsCast;
    use wasm_bindgen_futures::JsFuture;

    /// server_fn's browser client, sending cookies along.
    pub struct RpcClient;

    /// The answer of one call (server_fn's own type cannot be built outside it).
    pub struct RpcResponse(SendWrapper<Response>);

    fn request_error<E: FromServerFnError>(message: impl ToString) -> E {
        ServerFnErrorErr::Request(message.to_string()).into_app_error()
    }

    /// Aborts the call when its future is dropped before an answer came
    /// (as server_fn's own client does), never once it has one.
    struct AbortOnDrop(Option<web_sys::AbortController>);

    impl Drop for AbortOnDrop {
        fn drop(&mut self) {
            if let Some(controller) = self.0.take() {
                controller.abort();
            }
        }
    }

    /// Sends `request` as `fetch` with the cookies, under a signal of its
    /// own (the request's was server_fn's wrapper's, aborted as it was
    /// unwrapped).
    async fn fetch(request: web_sys::Request) -> Result<Response, String> {
        let controller = web_sys::AbortController::new().map_err(|e| format!("{e:?}"))?;
        let init = web_sys::RequestInit::new();
        init.set_credentials(web_sys::RequestCredentials::Include);
        init.set_signal(Some(&controller.signal()));
        let mut guard = AbortOnDrop(Some(controller));
        let window = web_sys::window().ok_or("no window")?;
        let answer = JsFuture::from(window.fetch_with_request_and_init(&request, &init))
            .await
            .map_err(|e| {
                e.as_string()
                    .or_else(|| {
                        e.dyn_ref::<js_sys::Error>()
                            .map(|e| String::from(e.message()))
                    })
                    .unwrap_or_else(|| "the request failed".to_owned())
            })?;
        guard.0 = None;
        let answer: web_sys::Response = answer
            .dyn_into()
            .map_err(|_| "fetch did not answer with a Response".to_owned())?;
        Ok(Response::from(answer))
    }

    impl<E, IS, OS> Client<E, IS, OS> for RpcClient
    where
        E: FromServerFnError,
        IS: FromServerFnError,
        OS: FromServerFnError,
    {
        type Request = BrowserRequest;
        type Response = RpcResponse;

        fn send(request: BrowserRequest) -> impl Future<Output = Result<RpcResponse, E>> + Send {
            let request: web_sys::Request = request.into();
            SendWrapper::new(async move {
                fetch(request)
                    .await
                    .map(|r| RpcResponse(SendWrapper::new(r)))
                    .map_err(request_error)
            })
        }

        fn open_websocket(
            url: &str,
        ) -> impl Future<
            Output = Result<
                (
                    impl Stream<Item = Result<Bytes, Bytes>> + Send + 'static,
                    impl Sink<Bytes> + Send + 'static,
                ),
                E,
            >,
        > + Send {
            <BrowserClient as Client<E, IS, OS>>::open_websocket(url)
        }

        fn spawn(future: impl Future<Output = ()> + Send + 'static) {
            <BrowserClient as Client<E, IS, OS>>::spawn(future)
        }
    }

    impl<E: FromServerFnError> ClientRes<E> for RpcResponse {
        fn try_into_string(self) -> impl Future<Output = Result<String, E>> + Send {
            SendWrapper::new(async move {
                self.0
                    .text()
                    .await
                    .map_err(|e| ServerFnErrorErr::Deserialization(e.to_string()).into_app_error())
            })
        }

        fn try_into_bytes(self) -> impl Future<Output = Result<Bytes, E>> + Send {
            SendWrapper::new(async move {
                self.0
                    .binary()
                    .await
                    .map(Bytes::from)
                    .map_err(|e| ServerFnErrorErr::Deserialization(e.to_string()).into_app_error())
            })
        }

        /// No server function here streams its answer.
        fn try_into_stream(
            self,
        ) -> Result<impl Stream<Item = Result<Bytes, Bytes>> + Send + 'static, E> {
            Err::<futures_util::stream::Empty<Result<Bytes, Bytes>>, E>(
                ServerFnErrorErr::Response("streamed answers are not used".into()).into_app_error(),
            )
        }

        fn status(&self) -> u16 {
            self.0.status()
        }

        fn status_text(&self) -> String {
            self.0.status_text()
        }

        fn location(&self) -> String {
            self.0
                .headers()
                .get("Location")
                .unwrap_or_else(|| self.0.url())
        }

        fn has_redirect(&self) -> bool {
            self.0
                .headers()
                .get(leptos::server_fn::redirect::REDIRECT_HEADER)
                .is_some()
        }
    }
}
