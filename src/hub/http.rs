//! Requests to the hub. Redirects are followed here, by hand, so that the token goes to the
//! endpoint's own origin only, a redirect without `Location` is an error rather than a crash,
//! and the hub's own answer (not a CDN's) is the one whose headers count. Only `hub` calls this.

use reqwest::header::{HeaderValue, AUTHORIZATION, LOCATION, RANGE};
use reqwest::{Client, Method, Response, Url};

use super::names::shown;
use super::HubOptions;

/// Redirects followed for one request before giving up.
const MAX_REDIRECTS: usize = 10;

/// Which redirects to follow.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Follow {
    /// All of them (the token only where the origin is the endpoint's).
    All,
    /// Only those to the endpoint's origin; another origin's redirect is the answer.
    SameOrigin,
}

/// Why a request got no answer to use.
pub(super) enum SendError {
    /// No connection, a reset, a timeout: trying again may help.
    Transport(String),
    /// The server answered in a way no hub does.
    Protocol(String),
}

pub(super) struct Hub {
    client: Client,
    pub endpoint: Url,
    token: Option<String>,
}

impl Hub {
    pub fn new(opts: &HubOptions) -> Result<Self, String> {
        let endpoint = Url::parse(&opts.endpoint)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| {
                format!(
                    "HF_ENDPOINT {} is not an http(s) URL",
                    shown(&opts.endpoint)
                )
            })?;
        let client = Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(opts.request_timeout)
            .user_agent(concat!("dpa-explorer/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot set up the hub client: {e}"))?;
        Ok(Hub {
            client,
            endpoint,
            token: opts.token.clone(),
        })
    }

    /// `{endpoint}/{segments...}`, each segment escaped (a `/` inside one included).
    pub fn url<'a>(&self, segments: impl IntoIterator<Item = &'a str>) -> Url {
        let mut url = self.endpoint.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    fn same_origin(&self, url: &Url) -> bool {
        url.origin() == self.endpoint.origin()
    }

    /// Sends one request, following redirects as `follow` says; `range` is inclusive.
    pub async fn send(
        &self,
        method: Method,
        mut url: Url,
        range: Option<(u64, u64)>,
        follow: Follow,
        timeout: Option<std::time::Duration>,
    ) -> Result<Response, SendError> {
        for _ in 0..=MAX_REDIRECTS {
            let mut req = self.client.request(method.clone(), url.clone());
            if let Some(t) = timeout {
                req = req.timeout(t);
            }
            if let (Some(token), true) = (&self.token, self.same_origin(&url)) {
                if let Ok(v) = HeaderValue::from_str(&format!("Bearer {token}")) {
                    req = req.header(AUTHORIZATION, v);
                }
            }
            if let Some((a, b)) = range {
                req = req.header(RANGE, format!("bytes={a}-{b}"));
            }
            let response = req
                .send()
                .await
                .map_err(|e| SendError::Transport(root_cause(&e)))?;
            if !response.status().is_redirection() {
                return Ok(response);
            }
            let status = response.status().as_u16();
            let location = response
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| {
                    SendError::Protocol(format!(
                        "{} answered HTTP {status} (a redirect) without a Location header",
                        origin_text(&url)
                    ))
                })?;
            let next = url.join(location).map_err(|_| {
                SendError::Protocol(format!(
                    "{} redirected to {}, which is not a URL",
                    origin_text(&url),
                    shown(location)
                ))
            })?;
            if !matches!(next.scheme(), "http" | "https") {
                return Err(SendError::Protocol(format!(
                    "{} redirected to {}, which is not http(s)",
                    origin_text(&url),
                    shown(location)
                )));
            }
            if follow == Follow::SameOrigin && !self.same_origin(&next) {
                return Ok(response);
            }
            url = next;
        }
        Err(SendError::Protocol(format!(
            "{} redirected more than {MAX_REDIRECTS} times",
            origin_text(&url)
        )))
    }
}

fn origin_text(url: &Url) -> String {
    url.origin().ascii_serialization()
}

/// The innermost cause of a transport error, which is the informative part
/// (`Connection refused`, `failed to lookup address`, `operation timed out`).
pub(super) fn root_cause(e: &dyn std::error::Error) -> String {
    let mut deepest = e;
    while let Some(s) = deepest.source() {
        deepest = s;
    }
    let text = deepest.to_string();
    if text.is_empty() {
        e.to_string()
    } else {
        text
    }
}
